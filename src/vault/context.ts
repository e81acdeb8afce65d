// Shared internals of the vault modules: the open vault's context, sealing that reports events,
// reading kept releases and the highest-version state, removing a release safely.
import { closeSync, constants, lstatSync, openSync } from 'node:fs';
import { lstat, open, readdir, rename, rm, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { DEFAULT_LIMITS, type BundleLimits } from '../core/limits.js';
import { procFdAvailable } from '../adapters/proc-fd.js';
import { parseManifest, type Manifest } from '../core/manifest.js';
import { parseSignatures, signatureContext } from '../core/signature.js';
import { verifySignedManifest } from '../core/trust.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { FS_IMMUTABLE_FL, seal, sealTree, unseal, unsealTree } from '../adapters/flags.js';
import { fsyncDir } from '../adapters/bundle-file.js';
import { removeTreeByFd } from '../adapters/remove-tree.js';
import { readLinkTarget, readNames, readSmallFile, readSmallFileBytes } from '../adapters/small-file.js';
import { ed25519Verify, sha512 } from './ed25519.js';
import { NAMES, layoutOf, liveDirOfTarget, parseReleaseDirName, releaseFiles } from './layout.js';
import type { VaultConfig, VaultLayout } from './layout.js';
import type { VaultDeps, VaultEvent } from './types.js';

/** What a kept manifest is read after (see signatureInput). */
const SIGNATURE_PREFIX = signatureContext();

export interface VaultCtx {
  readonly path: string;
  readonly layout: VaultLayout;
  readonly config: VaultConfig;
  readonly deps: VaultDeps;
  readonly limits: BundleLimits;
  readonly keep: number;
  /** Names a path anchored at a held descriptor by the vault path it stands for (src/vault/held.ts). */
  readonly label?: (path: string) => string;
}

// Why: one constructor applies the defaults of the optional deps (limits, keep count).
export function makeCtx(path: string, config: VaultConfig, deps: VaultDeps): VaultCtx {
  return { path, layout: layoutOf(path), config, deps, limits: deps.limits ?? DEFAULT_LIMITS, keep: Math.max(2, deps.keepReleases ?? 3) };
}

// Why: every seal/unseal and outcome reaches the daemon's audit log through one function.
export function emit(ctx: VaultCtx, e: Omit<VaultEvent, 'at'>): void {
  ctx.deps.onEvent?.({ ...e, ...(e.path !== undefined && ctx.label !== undefined ? { path: ctx.label(e.path) } : {}), at: performance.now() });
}

export async function step(ctx: VaultCtx, name: string): Promise<void> {
  if (ctx.deps.hook !== undefined) await ctx.deps.hook(name);
}

// Why: seals in the given order and records it (files before their directories).
export async function sealPaths(ctx: VaultCtx, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  await seal(ctx.deps.flags, paths);
  for (const p of paths) emit(ctx, { kind: 'seal', path: p });
}

export async function unsealPaths(ctx: VaultCtx, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  emit(ctx, { kind: 'unseal', path: paths[0], count: paths.length });
  await unseal(ctx.deps.flags, paths);
}

export async function sealWholeTree(ctx: VaultCtx, root: string): Promise<number> {
  const n = await sealTree(ctx.deps.flags, root);
  emit(ctx, { kind: 'seal', path: root, count: n });
  return n;
}

export async function isSealed(ctx: VaultCtx, path: string): Promise<boolean> {
  return ((await ctx.deps.flags.getFlags(path)) & FS_IMMUTABLE_FL) !== 0;
}

/** Whether anything (a symlink included, never followed) exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes a tree that may hold +i files: flags lifted first, then deleted. Missing is fine. */
export async function removeTree(ctx: VaultCtx, path: string): Promise<void> {
  try {
    if (await removeTreeByFd(path)) return;
  } catch (e) {
    throw ioError(e, 'cannot remove a directory tree', (e as NodeJS.ErrnoException).path ?? path);
  }
  // Without the addon: flags lifted and the tree deleted by path. A directory swapped for a symlink
  // after the directories are unsealed is followed here (docs/SECURITY.md); the addon's walk is the
  // safe one.
  try {
    await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    try {
      await unsealTree(ctx.deps.flags, path);
    } catch {
      // A tampered tree may hold what the flag walk refuses (a fifo, a device): lift flags path by path.
      await unsealEach(ctx, path);
    }
    await rm(path, { recursive: true, force: true });
  } catch (e) {
    // Something else changing the tree meanwhile (ENOENT, ENOTEMPTY) is one clear error, not a crash.
    throw ioError(e, 'cannot remove a directory tree', path);
  }
}

async function unsealEach(ctx: VaultCtx, path: string): Promise<void> {
  const st = await lstat(path);
  if (st.isSymbolicLink()) return;
  await ctx.deps.flags.setFlag(path, FS_IMMUTABLE_FL, false).catch(() => undefined);
  if (st.isDirectory()) for (const name of await readdir(path)) await unsealEach(ctx, join(path, name));
}

// Why: within the live layout every write happens inside a short unseal of its parent; the parent is
// re-sealed even when the write fails, so an error never leaves a vault directory open.
export async function withUnsealed<T>(ctx: VaultCtx, dirs: string[], act: () => Promise<T>): Promise<T> {
  await unsealPaths(ctx, dirs);
  try {
    return await act();
  } finally {
    await sealPaths(ctx, [...dirs].reverse());
  }
}

/** Largest vault.json read (64 keys with comments fit many times over). */
const MAX_VAULT_CONFIG_BYTES = 1024 * 1024;

// Why: vault.json is read on every open and verify; a fifo, a huge file or a symlink put there is `tampered`, never a hang or followed.
export function readVaultConfigText(file: string): Promise<string> {
  return readSmallFile(file, { what: 'vault.json', maxBytes: MAX_VAULT_CONFIG_BYTES, badFileCode: 'tampered', noFollow: true });
}

/** The signed bytes of a release directory under releases/, read but neither parsed nor verified. */
export interface ReleaseBytes {
  dirName: string;
  dir: string;
  releaseId: string;
  manifestBytes: Uint8Array;
  signatureBytes: Uint8Array;
}

/** A kept release with its manifest parsed (not yet verified). */
export interface KeptReleaseInfo extends ReleaseBytes {
  manifest: Manifest;
}

// Why: a release directory that is a symlink is never followed (docs/SECURITY.md#symlinks-in-the-vault);
// its files are read through this descriptor, O_NOFOLLOW again. Missing (null): the release is incomplete, as always.
function openReleaseDir(dir: string): number | null {
  try {
    return openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const errno = errnoOf(e);
    // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or ELOOP): an lstat says which it is.
    if (errno === 'ELOOP' || errno === 'ENOTDIR') {
      const link = lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink() === true;
      throw new SentinelError('tampered', link ? 'release directory is a symlink (not followed)' : 'release directory is not a directory', { where: dir, cause: e });
    }
    if (errno === 'ENOENT') return null;
    throw ioError(e, 'cannot open the release directory', dir);
  }
}

// Why: verify reads the bytes once and lets verification parse them; an unreadable release is reported, not guessed.
export async function readReleaseBytes(ctx: VaultCtx, dir: string): Promise<ReleaseBytes> {
  const name = basename(dir);
  const parsed = parseReleaseDirName(name);
  if (parsed === null) throw new SentinelError('tampered', 'not a release directory name', { where: dir });
  const files = releaseFiles(dir);
  const fd = openReleaseDir(dir);
  // Without /proc: by path, O_NOFOLLOW, right after the directory was opened O_NOFOLLOW (docs/SECURITY.md#without-proc).
  const inDir = (file: string): string => (fd === null || !procFdAvailable() ? file : `/proc/self/fd/${String(fd)}/${basename(file)}`);
  // Both read at once (a few pool round trips each); a manifest problem is named before a signatures one.
  let m: PromiseSettledResult<Buffer>;
  let s: PromiseSettledResult<Buffer>;
  try {
    [m, s] = await Promise.allSettled([
      // Read right after the signature context, so the signature input needs no copy of the manifest.
      readSmallFileBytes(inDir(files.manifest), { what: 'manifest.json', maxBytes: ctx.limits.maxManifestBytes, badFileCode: 'tampered', prefix: SIGNATURE_PREFIX, noFollow: true, where: files.manifest }),
      readSmallFileBytes(inDir(files.signatures), { what: 'signatures.json', maxBytes: ctx.limits.maxSignatureBlockBytes, badFileCode: 'tampered', noFollow: true, where: files.signatures }),
    ]);
  } finally {
    if (fd !== null) closeSync(fd);
  }
  const incomplete = (e: unknown): SentinelError => {
    if (isSentinelError(e) && e.code !== 'not-found') return e;
    return new SentinelError('tampered', `release is incomplete: ${isSentinelError(e) ? e.message : String(e)}`, { where: dir, cause: e });
  };
  if (m.status === 'rejected') throw incomplete(m.reason);
  if (s.status === 'rejected') throw incomplete(s.reason);
  return { dirName: name, dir, releaseId: parsed.releaseId, manifestBytes: m.value, signatureBytes: s.value };
}

// Why: kept releases are read for highest-version, rollback and recovery.
export async function readKeptRelease(ctx: VaultCtx, dir: string): Promise<KeptReleaseInfo> {
  const r = await readReleaseBytes(ctx, dir);
  return { ...r, manifest: parseManifest(r.manifestBytes, ctx.limits) };
}

// Why: a kept release is only trusted after its signatures verify against the policy and its id matches its name.
export function verifyKeptRelease(ctx: VaultCtx, r: ReleaseBytes, policy: TrustPolicy): VerifiedManifest {
  const sigs = parseSignatures(r.signatureBytes, ctx.limits);
  const v = verifySignedManifest(r.manifestBytes, sigs, policy, ctx.limits, { verify: ed25519Verify, sha512 });
  assertReleaseBinding(ctx, r, v.releaseId, v.manifest.vaultId);
  return v;
}

/** A signed manifest kept under a directory named for another release, or bound to another vault, is refused (verify, rollback, status). */
export function assertReleaseBinding(ctx: VaultCtx, r: ReleaseBytes, releaseId: string, vaultId: string): void {
  if (releaseId !== r.releaseId) throw new SentinelError('tampered', `release directory is named ${r.releaseId} but holds release ${releaseId}`, { where: r.dir });
  if (vaultId !== ctx.config.vaultId) throw new SentinelError('wrong-vault', `release is bound to vault ${vaultId}`, { where: r.dir });
}

export async function listReleaseDirs(ctx: VaultCtx): Promise<string[]> {
  const names = await readNames(ctx.layout.releases);
  return names.filter((n) => parseReleaseDirName(n) !== null).sort();
}

/** Oldest first: by version, then by directory name (a healed copy after its original). */
export function byVersion(a: KeptReleaseInfo, b: KeptReleaseInfo): number {
  return a.manifest.version - b.manifest.version || (a.dirName < b.dirName ? -1 : 1);
}

/** Kept releases that can be read; unreadable ones are listed apart. `known`: one already read and parsed, not read again. */
export async function listKeptReleases(ctx: VaultCtx, known?: KeptReleaseInfo): Promise<{ ok: KeptReleaseInfo[]; broken: string[] }> {
  const ok: KeptReleaseInfo[] = [];
  const broken: string[] = [];
  const names = await listReleaseDirs(ctx);
  // Read at once: a deploy reads every kept release, and each read waits on the thread pool.
  const read = await Promise.allSettled(names.map((name) => (name === known?.dirName ? Promise.resolve(known) : readKeptRelease(ctx, ctx.layout.release(name)))));
  for (const [i, r] of read.entries()) {
    if (r.status === 'fulfilled') ok.push(r.value);
    else broken.push(names[i]!);
  }
  ok.sort(byVersion);
  return { ok, broken };
}

/** The directory name `current` points to (`releases/<name>`), or null when there is no pointer. */
export async function readLiveDirName(ctx: VaultCtx): Promise<string | null> {
  let target: string;
  try {
    target = await readLinkTarget(ctx.layout.current);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'EINVAL') throw new SentinelError('tampered', '`current` is not a symlink', { where: ctx.layout.current, cause: e });
    throw new SentinelError('io', 'cannot read `current`', { where: ctx.layout.current, cause: e });
  }
  const name = liveDirOfTarget(target);
  if (name === null) throw new SentinelError('tampered', `\`current\` points outside releases/: ${target}`, { where: ctx.layout.current });
  return name;
}

// Why: the commit point of every deploy, heal and rollback — the only write into VAULT/ itself, inside
// the shortest possible unseal of VAULT/ (its duration does not depend on the bundle's size). Durable
// once VAULT/ is fsync'ed: here, unless the caller does it itself (`sync: false`, a deploy that
// flushes other work alongside). Returns the live window in ms.
export async function swapLive(ctx: VaultCtx, dirName: string, opts: { sync?: boolean } = {}): Promise<number> {
  const { root, current, currentTmp } = ctx.layout;
  await rm(currentTmp, { force: true }).catch(() => undefined);
  const t0 = performance.now();
  await unsealPaths(ctx, [root]);
  let t1: number;
  try {
    await symlink(`${NAMES.releases}/${dirName}`, currentTmp);
    await rename(currentTmp, current);
  } finally {
    await sealPaths(ctx, [root]);
    t1 = performance.now();
  }
  if (opts.sync !== false) await fsyncDir(root);
  return t1 - t0;
}

// Why: independent flushes (or reads) run at once, and the first failure in the given order is the
// one reported, whichever finished first; none is still running when this returns or throws.
export async function allInOrder(work: (Promise<unknown> | null)[]): Promise<void> {
  for (const r of await Promise.allSettled(work.map((w) => w ?? Promise.resolve()))) if (r.status === 'rejected') throw r.reason;
}

// Why: `mode` exactly, whatever the process umask (the shipped unit runs with UMask=0077).
export async function writeFileDurable(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const fh = await open(path, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
