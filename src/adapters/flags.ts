// Inode flags (chattr +i) for sealing the vault: through the native ioctl addon when it is built,
// otherwise through the chattr/lsattr executables. Every refusal is an error with the path, never
// "nothing to do" (docs/VAULT.md#invariants 5).
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import { isSystemError, loadNative } from './native.js';
import type { NativeAddon } from './native.js';

// The inode flag bits of <linux/fs.h> this product uses.
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;

// One way of reading and changing inode flags; the batch forms are optional so that test doubles
// stay small, and seal/unseal use them when present (one call instead of one per path).
export interface FlagStore {
  /** How flags are read: 'ioctl' (the addon) lets verify read them in its native pass instead (docs/VAULT.md#tree-check). */
  readonly kind: 'ioctl' | 'chattr';
  getFlags(path: string): Promise<number>;
  setFlag(path: string, flag: number, on: boolean): Promise<void>;
  /** setFlag over many paths in order; stops at the first failure. Returns how many were processed. */
  setFlagMany?(paths: string[], flag: number, on: boolean): Promise<number>;
  /** Flags of each path in order; throws on the first path it cannot read. */
  getFlagsMany?(paths: string[]): Promise<number[]>;
  /** Whether each path is +i; the cheapest read the store has (statx for ioctl). Throws like getFlagsMany. */
  getImmutableMany?(paths: string[]): Promise<boolean[]>;
}

function errnoMessage(errno: string, action: string): string {
  switch (codeForErrno(errno, 'inode-flags')) {
    case 'not-permitted':
      return `not permitted to ${action} (${errno}; needs root with CAP_LINUX_IMMUTABLE)`;
    case 'no-immutable-support':
      return `the filesystem does not support the immutable flag (${errno})`;
    case 'not-found':
      return `no such file or directory (${errno})`;
    case 'bad-path':
      return `a symlink carries no inode flags (${errno})`;
    default:
      return `could not ${action} (${errno})`;
  }
}

// Converts an addon / node:fs system error into a SentinelError whose `where` is the path.
export function flagError(e: unknown, path: string, action: string): SentinelError {
  if (e instanceof SentinelError) return e;
  if (isSystemError(e)) {
    const where = typeof e.path === 'string' && e.path !== '' ? e.path : path;
    return new SentinelError(codeForErrno(e.code, 'inode-flags'), errnoMessage(e.code, action), { where, cause: e });
  }
  return new SentinelError('internal', `unexpected failure to ${action}`, { where: path, cause: e });
}

function actionOf(flag: number, on: boolean): string {
  return `${on ? 'set' : 'clear'} inode flag 0x${flag.toString(16)}`;
}

// From this many paths on, the ioctl store seals on the thread pool instead of inline.
const ASYNC_BATCH_MIN = 256;

class IoctlFlagStore implements FlagStore {
  readonly kind = 'ioctl' as const;
  constructor(readonly addon: NativeAddon) {}

  getFlags(path: string): Promise<number> {
    try {
      return Promise.resolve(this.addon.getFlags(path));
    } catch (e) {
      return Promise.reject(flagError(e, path, 'read inode flags'));
    }
  }

  setFlag(path: string, flag: number, on: boolean): Promise<void> {
    try {
      this.addon.setFlag(path, flag, on);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(flagError(e, path, actionOf(flag, on)));
    }
  }

  // Small batches (the live pointer, a release's top directories) run inline for the shortest
  // unsealed window; large ones go to the thread pool so the event loop keeps serving.
  async setFlagMany(paths: string[], flag: number, on: boolean): Promise<number> {
    try {
      if (paths.length < ASYNC_BATCH_MIN) this.addon.setFlagMany(paths, flag, on);
      else await this.addon.setFlagManyAsync(paths, flag, on);
      return paths.length;
    } catch (e) {
      throw flagError(e, paths[0] ?? '', actionOf(flag, on));
    }
  }

  getFlagsMany(paths: string[]): Promise<number[]> {
    return this.collect(paths, this.addon.getFlagsMany(paths));
  }

  async getImmutableMany(paths: string[]): Promise<boolean[]> {
    const bits = await this.collect(paths, this.addon.getSealBitsMany(paths));
    return bits.map((b) => (b & FS_IMMUTABLE_FL) !== 0);
  }

  private collect(paths: string[], raw: (number | string)[]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      const path = paths[i] ?? '';
      if (typeof v === 'string') {
        return Promise.reject(new SentinelError(codeForErrno(v, 'inode-flags'), errnoMessage(v, 'read inode flags'), { where: path }));
      }
      out.push(v ?? 0);
    }
    return Promise.resolve(out);
  }
}

// lsattr's one-letter names (e2fsprogs lib/e2p/pf.c) → FS_*_FL bits.
const LETTER_BITS: Readonly<Record<string, number>> = {
  s: 0x1, u: 0x2, c: 0x4, S: 0x8, i: 0x10, a: 0x20, d: 0x40, A: 0x80, E: 0x800, m: 0x400,
  I: 0x1000, j: 0x4000, t: 0x8000, D: 0x10000, T: 0x20000, e: 0x80000, V: 0x100000,
  C: 0x800000, x: 0x2000000, N: 0x10000000, P: 0x20000000, F: 0x40000000,
};
const SETTABLE_LETTERS: readonly [number, string][] = [[FS_IMMUTABLE_FL, 'i'], [FS_APPEND_FL, 'a']];

// Too many paths on one command line would hit ARG_MAX; this keeps each chattr call modest.
const CHATTR_BATCH = 2000;

// e2fsprogs prints strerror text; map it back to the errno name.
function errnoFromToolMessage(text: string): string {
  if (/Operation not permitted/i.test(text)) return 'EPERM';
  if (/Permission denied/i.test(text)) return 'EACCES';
  if (/Read-only file system/i.test(text)) return 'EROFS';
  if (/Operation not supported/i.test(text)) return 'EOPNOTSUPP';
  if (/Inappropriate ioctl/i.test(text)) return 'ENOTTY';
  if (/Invalid argument/i.test(text)) return 'EINVAL';
  if (/No such file or directory/i.test(text)) return 'ENOENT';
  if (/Not a directory/i.test(text)) return 'ENOTDIR';
  if (/Too many levels of symbolic links/i.test(text)) return 'ELOOP';
  return 'EIO';
}

function letterFlags(letters: string): number {
  let flags = 0;
  for (const ch of letters) flags |= LETTER_BITS[ch] ?? 0;
  return flags;
}

// A trailing `/.` is kept: it names the directory itself even when what leads there is a symlink
// (a directory held open by the vault, /proc/<pid>/fd/<fd>/.), which resolve() would cut to the link.
const absolute = (p: string): string => (p.endsWith('/.') ? `${resolve(p)}/.` : resolve(p));

class ChattrFlagStore implements FlagStore {
  readonly kind = 'chattr' as const;

  // Symlinks carry no flags, and chattr/lsattr would follow them (or say "not supported"):
  // refuse them the same way the ioctl addon does.
  private rejectSymlinks(paths: string[], action: string): void {
    for (const p of paths) {
      let isLink: boolean;
      try {
        isLink = lstatSync(p).isSymbolicLink();
      } catch (e) {
        throw flagError(e, p, action);
      }
      if (isLink) throw new SentinelError('bad-path', errnoMessage('ELOOP', action), { where: p });
    }
  }

  private async run(tool: 'chattr' | 'lsattr', args: string[], paths: string[], action: string): Promise<string> {
    // Loaded here, not with the module: the ioctl store (every host with the addon) never needs the
    // process adapter and execa (docs/ARCHITECTURE.md#start-up).
    const { runCommand } = await import('./process.js');
    const r = await runCommand([tool, ...args, ...paths], { timeoutMs: TOOL_TIMEOUT_MS, stripFinalNewline: false, env: { LC_ALL: 'C' } });
    if (!r.ok) {
      const text = r.stderr.trim() || r.message;
      const firstLine = text.split('\n')[0] ?? text;
      // "chattr: <strerror> while <doing> on <path>"
      const where = /\son (.+)$/.exec(firstLine)?.[1] ?? /stat (.+)$/.exec(firstLine)?.[1] ?? paths[0] ?? '';
      if (r.startError !== null) {
        throw new SentinelError('unavailable', `${tool} could not be run: ${firstLine}`, { where, cause: r });
      }
      if (r.timedOut) throw new SentinelError('io', `${tool} did not finish within ${TOOL_TIMEOUT_MS} ms`, { where, cause: r });
      const errno = errnoFromToolMessage(firstLine);
      throw new SentinelError(codeForErrno(errno, 'inode-flags'), `${errnoMessage(errno, action)}: ${firstLine}`, { where, cause: r });
    }
    return String(r.stdout);
  }

  async getFlags(path: string): Promise<number> {
    const [flags] = await this.getFlagsMany([path]);
    return flags ?? 0;
  }

  async getFlagsMany(paths: string[]): Promise<number[]> {
    const abs = paths.map(absolute);
    this.rejectSymlinks(abs, 'read inode flags');
    const out: number[] = [];
    for (let i = 0; i < abs.length; i += CHATTR_BATCH) {
      const chunk = abs.slice(i, i + CHATTR_BATCH);
      const stdout = await this.run('lsattr', ['-d', '--'], chunk, 'read inode flags');
      const lines = stdout.split('\n').filter((l) => l !== '');
      if (lines.length !== chunk.length) {
        throw new SentinelError('io', `lsattr printed ${lines.length} lines for ${chunk.length} paths`, { where: chunk[0] });
      }
      for (const [j, line] of lines.entries()) {
        const expected = chunk[j] ?? '';
        const sp = line.indexOf(' ');
        if (sp < 0 || line.slice(sp + 1) !== expected) {
          throw new SentinelError('io', `unexpected lsattr output: ${line}`, { where: expected });
        }
        out.push(letterFlags(line.slice(0, sp)));
      }
    }
    return out;
  }

  async setFlag(path: string, flag: number, on: boolean): Promise<void> {
    await this.setFlagMany([path], flag, on);
  }

  async setFlagMany(paths: string[], flag: number, on: boolean): Promise<number> {
    let letters = '';
    let rest = flag;
    for (const [bit, letter] of SETTABLE_LETTERS) {
      if ((flag & bit) !== 0) {
        letters += letter;
        rest &= ~bit;
      }
    }
    if (letters === '' || rest !== 0) {
      throw new SentinelError('internal', `the chattr flag store only sets i and a, not 0x${flag.toString(16)}`);
    }
    const abs = paths.map(absolute);
    const action = actionOf(flag, on);
    this.rejectSymlinks(abs, action);
    for (let i = 0; i < abs.length; i += CHATTR_BATCH) {
      await this.run('chattr', [`${on ? '+' : '-'}${letters}`, '--'], abs.slice(i, i + CHATTR_BATCH), action);
    }
    return abs.length;
  }
}

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

/** Bound of one chattr/lsattr run (a batch takes well under a second; a hung filesystem must not hang the caller). */
const TOOL_TIMEOUT_MS = 120_000;

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
