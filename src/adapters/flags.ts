// Inode flags (chattr +i) for sealing the vault: through the native ioctl addon when it is built
// (flag-store-ioctl.ts), otherwise through the chattr/lsattr executables (flag-store-chattr.ts).
// This file picks the store and seals and unseals paths and whole trees with it; the FlagStore
// contract and its errors are in flag-store.ts. Every refusal is an error with the path, never
// "nothing to do" (docs/VAULT.md#invariants 5).
import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { flagError, FS_IMMUTABLE_FL } from './flag-store.js';
import type { FlagStore } from './flag-store.js';
import { ChattrFlagStore } from './flag-store-chattr.js';
import { IoctlFlagStore } from './flag-store-ioctl.js';
import { loadNative } from './native.js';

export { FS_APPEND_FL, FS_IMMUTABLE_FL, flagError } from './flag-store.js';
export type { FlagStore } from './flag-store.js';

let defaultStore: FlagStore | undefined;

// The ioctl addon if it was built (fast, no process per file), else chattr/lsattr.
export function defaultFlagStore(): FlagStore {
  if (defaultStore !== undefined) return defaultStore;
  const addon = loadNative();
  defaultStore = addon !== null ? new IoctlFlagStore(addon) : new ChattrFlagStore();
  return defaultStore;
}

// The ioctl store, or null where the addon is not built (tests compare both stores).
export function ioctlFlagStore(): FlagStore | null {
  const addon = loadNative();
  return addon === null ? null : new IoctlFlagStore(addon);
}

// chattr/lsattr run through the process adapter: the fallback, and a cross-check against the reference tools.
export function chattrFlagStore(): FlagStore {
  return new ChattrFlagStore();
}

// The vault's sealed check reads this for every file and directory.
export async function isImmutable(store: FlagStore, path: string): Promise<boolean> {
  return ((await store.getFlags(path)) & FS_IMMUTABLE_FL) !== 0;
}

async function setMany(store: FlagStore, paths: string[], flag: number, on: boolean): Promise<void> {
  if (paths.length === 0) return;
  if (store.setFlagMany !== undefined) {
    await store.setFlagMany(paths, flag, on);
    return;
  }
  for (const p of paths) await store.setFlag(p, flag, on);
}

// Whether each path is +i (verify's sealed check), with the cheapest batch read the store offers.
export async function areImmutable(store: FlagStore, paths: string[]): Promise<boolean[]> {
  if (store.getImmutableMany !== undefined) return store.getImmutableMany(paths);
  const flags = store.getFlagsMany !== undefined ? await store.getFlagsMany(paths) : await Promise.all(paths.map((p) => store.getFlags(p)));
  return flags.map((f) => (f & FS_IMMUTABLE_FL) !== 0);
}

// Seal (+i) the given paths in the given order: callers put files before their directories.
export async function seal(store: FlagStore, paths: string[]): Promise<void> {
  await setMany(store, paths, FS_IMMUTABLE_FL, true);
}

// Unseal (-i) the given paths in the given order: callers put directories before their files.
export async function unseal(store: FlagStore, paths: string[]): Promise<void> {
  await setMany(store, paths, FS_IMMUTABLE_FL, false);
}

/** Files and directories of a tree, directories in pre-order (each before its children); root first. */
export interface FlagTargets {
  files: string[];
  dirs: string[];
}

// Lists what sealTree/unsealTree act on: symlinks skipped, devices/fifos/sockets refused.
export async function listFlagTargets(root: string): Promise<FlagTargets> {
  const top = resolve(root);
  let st;
  try {
    st = await lstat(top);
  } catch (e) {
    throw flagError(e, top, 'read the tree');
  }
  if (st.isSymbolicLink()) return { files: [], dirs: [] };
  if (st.isFile()) return { files: [top], dirs: [] };
  if (!st.isDirectory()) throw new SentinelError('bad-path', 'not a regular file, directory or symlink', { where: top });
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    dirs.push(dir);
    let names;
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw flagError(e, dir, 'list the directory');
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      const p = join(dir, d.name);
      if (d.isSymbolicLink()) continue;
      if (d.isDirectory()) await walk(p);
      else if (d.isFile()) files.push(p);
      else throw new SentinelError('bad-path', 'a device, fifo or socket cannot be sealed', { where: p });
    }
  };
  await walk(top);
  return { files, dirs };
}

// Seals a whole tree: files first, then directories bottom-up, so nothing ever needs to change
// inside an already sealed directory. Returns how many files and directories were sealed.
export async function sealTree(store: FlagStore, root: string): Promise<number> {
  const { files, dirs } = await listFlagTargets(root);
  await seal(store, files);
  await seal(store, [...dirs].reverse());
  return files.length + dirs.length;
}

// Unseals a whole tree: directories top-down first, then files. Returns how many were unsealed.
export async function unsealTree(store: FlagStore, root: string): Promise<number> {
  const { files, dirs } = await listFlagTargets(root);
  await unseal(store, dirs);
  await unseal(store, files);
  return files.length + dirs.length;
}

// Before a vault is created or deployed to: set +i on a scratch file in `dir`, read it back and
// remove it, so an unsuitable filesystem or a missing capability is reported up front and precisely.
export async function probeImmutableSupport(dir: string, store: FlagStore = defaultFlagStore()): Promise<void> {
  const probe = join(resolve(dir), `.sentinel-probe-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(probe, 'wx', 0o600);
    await fh.close();
  } catch (e) {
    throw flagError(e, probe, 'create a probe file');
  }
  try {
    await store.setFlag(probe, FS_IMMUTABLE_FL, true);
    if (!(await isImmutable(store, probe))) {
      throw new SentinelError('no-immutable-support', 'the immutable flag did not stick on this filesystem', { where: dir });
    }
    await store.setFlag(probe, FS_IMMUTABLE_FL, false);
  } catch (e) {
    const err = e instanceof SentinelError ? e : flagError(e, probe, 'probe the immutable flag');
    throw new SentinelError(err.code, err.message, { where: dir, cause: err });
  } finally {
    try {
      await store.setFlag(probe, FS_IMMUTABLE_FL, false);
    } catch {
      // The probe never got the flag (the failure above says why); unlink below still runs.
    }
    await unlink(probe).catch(() => undefined);
  }
}
