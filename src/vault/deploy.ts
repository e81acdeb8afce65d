// Deploy, heal and rollback (docs/VAULT.md#invariants 1–4): verify the bundle's head
// against the trust policy before anything is written, stage and hash-check every file, seal the
// staged release, move it into releases/, then swap the live pointer inside the one short unseal of
// VAULT/. The swap is the commit point: a crash before it leaves the old release live, after it the new.
import { chmod, constants, copyFile, lstat, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SentinelError, exitCodeFor, isSentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import type { FileEntry } from '../core/manifest.js';
import { payloadLayout } from '../core/manifest.js';
import { parseSignatures } from '../core/signature.js';
import { checkDeployable, verifySignedManifest } from '../core/trust.js';
import type { VerifiedManifest } from '../core/trust.js';
import { fsyncDir, openBundle, stagePayload, syncFilesystem } from '../adapters/bundle-file.js';
import { copyColdFile, hasNativeSyncFs, nativeThreads, stageFilesNative } from '../adapters/native.js';
import { checkKeptBundle } from '../adapters/kept-bundle.js';
import type { OpenedBundle } from '../adapters/bundle-file.js';
import {
  emit,
  exists,
  listKeptReleases,
  listReleaseDirs,
  readHighestState,
  readKeptRelease,
  readLiveDirName,
  removeTree,
  retireBundle,
  retireRelease,
  sealPaths,
  sealWholeTree,
  step,
  swapLive,
  unsealPaths,
  verifyKeptRelease,
  withUnsealed,
  writeHighestState,
} from './context.js';
import type { VaultCtx } from './context.js';
import { parseReleaseDirName, releaseFiles } from './layout.js';
import { verifyRelease } from './verify.js';
import type { DeployResult } from './types.js';
import { ed25519Verify, sha512 } from './ed25519.js';

// Why: rollback protection counts every release still kept, not only state/highest.json, so a lost
// or stale state file cannot re-open an older version.
export async function highestVersion(ctx: VaultCtx): Promise<number> {
  const state = await readHighestState(ctx);
  const { ok } = await listKeptReleases(ctx);
  return ok.reduce((max, r) => Math.max(max, r.manifest.version), state.version);
}

function rejectEvent(ctx: VaultCtx, e: unknown, bundlePath: string): void {
  if (isSentinelError(e)) emit(ctx, { kind: 'reject', code: e.code, path: e.where ?? bundlePath, detail: e.message });
  else emit(ctx, { kind: 'reject', code: 'internal', path: bundlePath, detail: String(e) });
}

// The payload into staging: the bundle's length must be exactly head + payload (`truncated` /
// `trailing-data`), then every file is written and hashed on all cores by the addon (the digest is
// of the bytes written) and checked against the signed manifest (`hash-mismatch`). Without the
// addon, bundle-file's streaming stagePayload does the same on this thread.
async function writePayload(bundle: OpenedBundle, files: { entry: FileEntry; offset: number; dest: string }[], totalBytes: number): Promise<void> {
  const expectedEnd = bundle.payloadOffset + totalBytes;
  if (bundle.size < expectedEnd) throw new SentinelError('truncated', `bundle has ${bundle.size} bytes, its manifest needs ${expectedEnd}`, { where: bundle.path });
  if (bundle.size > expectedEnd) throw new SentinelError('trailing-data', `bundle has ${bundle.size - expectedEnd} bytes after the last payload file`, { where: bundle.path });
  const items = files.map((f) => ({ dest: f.dest, offset: bundle.payloadOffset + f.offset, size: f.entry.size, mode: f.entry.mode }));
  const results = await stageFilesNative(bundle.handle.fd, items, nativeThreads());
  if (results === null) {
    await stagePayload(bundle, files.map((f) => ({ entry: f.entry, dest: f.dest })), totalBytes);
    return;
  }
  let notReached = 0;
  for (const [i, r] of results.entries()) {
    const f = files[i]!;
    if (!r.ok) {
      if (r.errno === null) {
        notReached += 1;
        continue;
      }
      if (r.errno === 'ENODATA') throw new SentinelError('truncated', 'bundle payload ends early', { where: f.entry.path });
      throw new SentinelError(codeForErrno(r.errno), `cannot write staged file (${r.errno})`, { where: f.dest });
    }
    if (r.written !== f.entry.size) throw new SentinelError('truncated', 'bundle payload ends early', { where: f.entry.path });
    if (r.sha256 !== f.entry.sha256) {
      throw new SentinelError('hash-mismatch', `payload SHA-256 ${r.sha256} differs from the manifest's ${f.entry.sha256}`, { where: f.entry.path });
    }
  }
  if (notReached > 0) throw new SentinelError('internal', `${notReached} payload file(s) were never staged`, { where: bundle.path });
}

/** Counts of what a staged release holds. */
interface StageStats {
  files: number;
  bytes: number;
  /** Everything written, for making a small release durable file by file. */
  written: string[];
}

// Why: invariant 2 (docs/VAULT.md#invariants) — the payload lands only in staging/, each file hash-checked as written; symlinks are
// created after all files so no file can ever be written through one.
async function stageRelease(bundle: OpenedBundle, v: VerifiedManifest, dir: string): Promise<StageStats> {
  const files = releaseFiles(dir);
  // Modes come from here and from the manifest, never from the umask (docs/VAULT.md#modes).
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  await mkdir(files.tree, { mode: 0o755 });
  const dirs: { path: string; mode: number }[] = [];
  for (const e of v.manifest.entries) {
    if (e.type !== 'dir') continue;
    const abs = join(files.tree, e.path);
    mkdirSync(abs, { mode: 0o700 });
    dirs.push({ path: abs, mode: e.mode });
  }
  const layout = payloadLayout(v.manifest);
  let offset = 0;
  for (const f of layout.files) {
    if (f.offset !== offset) throw new SentinelError('internal', `payload layout is not sequential at ${f.entry.path}`, { where: bundle.path });
    offset += f.entry.size;
  }
  await writePayload(
    bundle,
    layout.files.map((f) => ({ entry: f.entry, offset: f.offset, dest: join(files.tree, f.entry.path) })),
    layout.totalBytes,
  );
  for (const e of v.manifest.entries) {
    if (e.type === 'symlink') symlinkSync(e.target, join(files.tree, e.path));
  }
  for (const d of dirs.reverse()) chmodSync(d.path, d.mode);
  await chmod(files.tree, 0o755);
  await writeFile(files.manifest, v.manifestBytes, { flag: 'wx', mode: 0o444 });
  await writeFile(files.signatures, bundle.signatureBytes, { flag: 'wx', mode: 0o444 });
  await Promise.all([chmod(files.manifest, 0o444), chmod(files.signatures, 0o444)]);
  const written = [...layout.files.map((f) => join(files.tree, f.entry.path)), files.manifest, files.signatures, ...dirs.map((d) => d.path), files.tree, dir];
  return { files: layout.files.length, bytes: layout.totalBytes, written };
}

// Keeps the received bundle for heal: moved when the caller hands it over (`consume`, same
// filesystem), else copied out of the page cache (a reflink where the filesystem has them, else
// O_DIRECT writes: the copy then neither competes with staging for fresh cache pages nor adds to
// what the durability sync must flush). Made durable by the one syncfs(2) that follows staging.
// What is kept is the verified file itself: the copy reads it through the open descriptor, and a
// moved file must be that same inode (a file swapped in at the path after verification is refused).
// Returns whether the bundle was moved.
async function storeBundleIn(bundle: OpenedBundle, dest: string, consume: boolean): Promise<boolean> {
  if (consume) {
    try {
      await rename(bundle.path, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
    if (await exists(dest)) {
      const [kept, verified] = await Promise.all([lstat(dest), bundle.handle.stat()]);
      if (kept.ino !== verified.ino || kept.dev !== verified.dev) {
        throw new SentinelError('tampered', 'the bundle file was replaced after its signature was verified', { where: bundle.path });
      }
      await chmod(dest, 0o444);
      return true;
    }
  }
  const src = `/proc/self/fd/${bundle.handle.fd}`;
  if ((await copyColdFile(src, dest)) === null) await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  await chmod(dest, 0o444);
  return false;
}

/** Without the addon's syncfs, up to this many staged paths are fsync'ed one by one; more are flushed with `sync -f`. */
const FSYNC_EACH_MAX = 256;

// Why: the staged release must be on disk before it can become live (power loss, docs/VAULT.md#durability).
// One syncfs(2) of the staging filesystem through the addon (the kept bundle copy is staged beside
// the release, on the same filesystem); without it a small release is fsync'ed path by path
// (concurrently, so the journal batches them) and a large one with one `sync -f`.
async function makeDurable(staged: string, written: string[], bundleCopy: string | null): Promise<void> {
  if (written.length > FSYNC_EACH_MAX || hasNativeSyncFs()) {
    await syncFilesystem(staged);
    return;
  }
  const paths = bundleCopy === null ? written : [...written, bundleCopy];
  await Promise.all(
    paths.map(async (p) => {
      const fh = await open(p, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }),
  );
  await fsyncDir(join(staged, '..'));
}

async function nextHealName(ctx: VaultCtx, releaseId: string): Promise<string> {
  let n = 0;
  for (const name of await listReleaseDirs(ctx)) {
    const p = parseReleaseDirName(name);
    if (p !== null && p.releaseId === releaseId) n = Math.max(n, p.heal);
  }
  return `${releaseId}.h${n + 1}`;
}

/** Moves a consumed bundle back to where it came from, with its own mode. */
async function putBack(from: string, to: string, mode: number): Promise<void> {
  await rename(from, to).catch(() => undefined);
  await chmod(to, mode).catch(() => undefined);
}

/** What a deploy had moved into the vault before it failed short of the swap. */
interface Uncommitted {
  dirName: string;
  staged: string;
  releaseMoved: boolean;
  stagedBundle: string;
  storedBundle: string;
  bundleStored: boolean;
  releaseId: string;
}

// Why: invariant 4 (docs/VAULT.md#invariants) — a deploy that fails before the pointer swap must leave the vault as it was; a
// release left in releases/ would count towards the highest version and refuse the same bundle again.
async function undoUncommitted(ctx: VaultCtx, u: Uncommitted, consumed: { path: string; mode: number } | null): Promise<void> {
  if (u.releaseMoved) await retireRelease(ctx, u.dirName);
  else await removeTree(ctx, u.staged);
  if (u.bundleStored) {
    if (consumed !== null && !(await exists(consumed.path))) {
      await withUnsealed(ctx, [ctx.layout.bundles], async () => {
        await unsealPaths(ctx, [u.storedBundle]);
        await putBack(u.storedBundle, consumed.path, consumed.mode);
      });
    }
    await retireBundle(ctx, u.releaseId);
  } else {
    if (consumed !== null && (await exists(u.stagedBundle)) && !(await exists(consumed.path))) await putBack(u.stagedBundle, consumed.path, consumed.mode);
    await rm(u.stagedBundle, { force: true });
  }
}

/**
 * Deploys (kind `deploy`) or re-stages the live release from its stored bundle (kind `heal`).
 * The caller holds the vault lock.
 */
export async function deployFrom(ctx: VaultCtx, bundlePath: string, kind: 'deploy' | 'heal', opts: { consume?: boolean } = {}): Promise<DeployResult> {
  const t0 = performance.now();
  const { layout } = ctx;
  const previous = await readLiveDirName(ctx);
  let bundle: OpenedBundle;
  try {
    bundle = await openBundle(bundlePath, ctx.limits);
  } catch (e) {
    rejectEvent(ctx, e, bundlePath);
    throw e;
  }
  // A consumed bundle that is put back gets its own mode back (it is made 0444 while kept).
  const consume = opts.consume === true;
  const bundleMode = consume ? (await bundle.handle.stat()).mode & 0o7777 : 0;
  let v: VerifiedManifest;
  let dirName: string;
  let staged: string;
  let stagedBundle: string;
  let storedBundle: string;
  let storeBundle: boolean;
  let movedIn = false;
  let stats: StageStats;
  // The bundle's descriptor is closed on every path out of verification and staging.
  try {
    try {
      const sigs = parseSignatures(bundle.signatureBytes, ctx.limits);
      v = verifySignedManifest(bundle.manifestBytes, sigs, ctx.config.trust, ctx.limits, { verify: ed25519Verify, sha512 });
      if (kind === 'deploy') {
        checkDeployable(v, { vaultId: ctx.config.vaultId, highestVersion: await highestVersion(ctx), now: ctx.deps.now() });
      } else {
        // Heal re-stages what is already live: same release, same vault; expiry does not apply (docs/VAULT.md).
        if (v.manifest.vaultId !== ctx.config.vaultId) throw new SentinelError('wrong-vault', `stored bundle is bound to vault ${v.manifest.vaultId}`, { where: bundlePath });
        const live = previous === null ? null : parseReleaseDirName(previous);
        if (live?.releaseId !== v.releaseId) throw new SentinelError('tampered', 'stored bundle is not the live release', { where: bundlePath });
      }
    } catch (e) {
      rejectEvent(ctx, e, bundlePath);
      throw e;
    }
    await step(ctx, 'verified');

    dirName = kind === 'deploy' ? v.releaseId : await nextHealName(ctx, v.releaseId);
    if (await exists(layout.release(dirName))) {
      throw new SentinelError('exists', 'a release with this id is already kept', { where: layout.release(dirName) });
    }
    staged = join(layout.staging, dirName);
    stagedBundle = join(layout.staging, `${v.releaseId}.bundle`);
    storedBundle = layout.bundle(v.releaseId);
    storeBundle = kind === 'deploy' || !(await exists(storedBundle));
    try {
      await removeTree(ctx, staged);
      await rm(stagedBundle, { force: true });
      // The in-kernel copy of the bundle runs alongside the hash-checked staging of its payload.
      const copied = storeBundle ? storeBundleIn(bundle, stagedBundle, consume) : Promise.resolve(false);
      const staging = stageRelease(bundle, v, staged);
      // Both settle before any cleanup, so a failed staging never races a still-running copy.
      const settled = await Promise.allSettled([staging, copied]);
      movedIn = settled[1].status === 'fulfilled' && settled[1].value;
      for (const x of settled) if (x.status === 'rejected') throw x.reason;
      stats = await staging;
      await step(ctx, 'staged');
      await makeDurable(staged, stats.written, storeBundle ? stagedBundle : null);
      const files = releaseFiles(staged);
      await sealWholeTree(ctx, files.tree);
      await sealPaths(ctx, [files.manifest, files.signatures]);
      await step(ctx, 'sealed-release');
    } catch (e) {
      await removeTree(ctx, staged).catch(() => undefined);
      if (consume && storeBundle && (await exists(stagedBundle)) && !(await exists(bundlePath))) {
        // A consumed bundle goes back where it came from when the deploy is rejected.
        await putBack(stagedBundle, bundlePath, bundleMode);
      }
      await rm(stagedBundle, { force: true }).catch(() => undefined);
      if (isSentinelError(e) && exitCodeFor(e.code) === 1) rejectEvent(ctx, e, bundlePath);
      throw e;
    }
  } finally {
    await bundle.close();
  }

  // Short windows: each parent is unsealed only for one rename and the seal of the moved entry.
  // Until the swap nothing is committed: a failure here takes the release (and the bundle stored
  // with it) out again, so the vault is as it was and the same bundle can be deployed later.
  const finalDir = layout.release(dirName);
  let releaseMoved = false;
  let bundleStored = false;
  try {
    await withUnsealed(ctx, [layout.releases], async () => {
      await rename(staged, finalDir);
      releaseMoved = true;
      await sealPaths(ctx, [finalDir]);
    });
    await fsyncDir(layout.releases);
    if (storeBundle) {
      await withUnsealed(ctx, [layout.bundles], async () => {
        if (await exists(storedBundle)) {
          await unsealPaths(ctx, [storedBundle]);
          await rm(storedBundle, { force: true });
        }
        await rename(stagedBundle, storedBundle);
        bundleStored = true;
        await sealPaths(ctx, [storedBundle]);
      });
      await fsyncDir(layout.bundles);
      // Sealed now; what is kept for heal must be the verified bytes (rewritten in place meanwhile: refused).
      await checkKeptBundle(storedBundle, bundle, payloadLayout(v.manifest).files.map((f) => f.entry), ctx.limits);
    }
    await step(ctx, 'before-swap');
  } catch (e) {
    await undoUncommitted(ctx, { dirName, staged, releaseMoved, stagedBundle, storedBundle, bundleStored, releaseId: v.releaseId }, consume && movedIn ? { path: bundlePath, mode: bundleMode } : null).catch(
      () => undefined,
    );
    throw e;
  }

  const liveWindowMs = await swapLive(ctx, dirName);
  await step(ctx, 'swapped');

  if (kind === 'deploy') {
    const state = await readHighestState(ctx);
    if (v.manifest.version > state.version) await writeHighestState(ctx, { version: v.manifest.version, releaseId: v.releaseId });
    await step(ctx, 'highest-updated');
  } else if (previous !== null && previous !== dirName) {
    await retireRelease(ctx, previous);
  }
  await prune(ctx, previous);
  await step(ctx, 'pruned');

  const previousReleaseId = previous === null ? null : (parseReleaseDirName(previous)?.releaseId ?? null);
  const result: DeployResult = {
    kind,
    releaseId: v.releaseId,
    releaseDir: dirName,
    version: v.manifest.version,
    signers: v.signers,
    previousReleaseId,
    files: stats.files,
    bytes: stats.bytes,
    liveWindowMs,
    totalMs: performance.now() - t0,
  };
  emit(ctx, { kind, releaseId: v.releaseId, version: v.manifest.version, path: finalDir, detail: `live window ${liveWindowMs.toFixed(3)} ms` });
  return result;
}

// Why: keeps the newest `keep` releases for rollback, and never removes the live one or the one it replaced.
export async function prune(ctx: VaultCtx, previous: string | null): Promise<string[]> {
  const live = await readLiveDirName(ctx);
  const { ok } = await listKeptReleases(ctx);
  const newestFirst = [...ok].reverse();
  const keepNames = new Set<string>(newestFirst.slice(0, ctx.keep).map((r) => r.dirName));
  if (live !== null) keepNames.add(live);
  if (previous !== null) keepNames.add(previous);
  const removed: string[] = [];
  for (const r of newestFirst) {
    if (keepNames.has(r.dirName)) continue;
    await retireRelease(ctx, r.dirName);
    removed.push(r.dirName);
    if (!ok.some((o) => o.releaseId === r.releaseId && keepNames.has(o.dirName))) await retireBundle(ctx, r.releaseId);
  }
  return removed;
}

// Why: back to the previous *signed* release still kept; its signature and tree are
// re-verified first. The highest version stays, so the version rolled back from cannot be re-deployed.
export async function rollbackTo(ctx: VaultCtx): Promise<DeployResult> {
  const t0 = performance.now();
  const live = await readLiveDirName(ctx);
  if (live === null) throw new SentinelError('not-found', 'no release is deployed', { where: ctx.layout.current });
  const liveInfo = await readKeptRelease(ctx, ctx.layout.release(live));
  const { ok } = await listKeptReleases(ctx);
  const older = ok.filter((r) => r.manifest.version < liveInfo.manifest.version);
  const target = older[older.length - 1];
  if (target === undefined) throw new SentinelError('not-found', `no release older than version ${liveInfo.manifest.version} is kept`, { where: ctx.layout.releases });
  const v = verifyKeptRelease(ctx, target, ctx.config.trust);
  const check = await verifyRelease(ctx, target.dir, v, {});
  const first = check.problems[0];
  if (first !== undefined) {
    emit(ctx, { kind: 'reject', code: first.code, path: first.path, detail: `rollback target: ${first.message}` });
    throw new SentinelError(first.code, `rollback target is not intact: ${first.message}`, { where: first.path });
  }
  await step(ctx, 'verified');
  const liveWindowMs = await swapLive(ctx, target.dirName);
  await step(ctx, 'swapped');
  emit(ctx, { kind: 'rollback', releaseId: v.releaseId, version: v.manifest.version, path: target.dir });
  return {
    kind: 'rollback',
    releaseId: v.releaseId,
    releaseDir: target.dirName,
    version: v.manifest.version,
    signers: v.signers,
    previousReleaseId: liveInfo.releaseId,
    files: check.checkedFiles,
    bytes: check.checkedBytes,
    liveWindowMs,
    totalMs: performance.now() - t0,
  };
}
