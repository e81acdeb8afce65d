// `vault verify` (docs/VAULT.md#invariants 5 and 6): fail-closed check of the live release —
// signatures against the trust policy (the vault's own or one given from outside), every entry's
// type, mode, size, SHA-256 and symlink target, no missing or extra entries, and +i on every file
// and directory that must carry it. A flag that cannot be read is a problem, never a pass.
import { lstat, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { lstatSync, readdirSync } from 'node:fs';
import { SentinelError, isSentinelError, messageOf } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import type { ErrorCode } from '../core/errors.js';
import type { FileEntry, ManifestEntry } from '../core/manifest.js';
import type { HashResult } from '../adapters/hash.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { FS_IMMUTABLE_FL, areImmutable, nativeAddonOf } from '../adapters/flags.js';
import { nativeThreads } from '../adapters/native.js';
import type { NativeAddon } from '../adapters/native.js';
import { inspectEntries } from '../adapters/tree.js';
import type { InspectedEntries } from '../adapters/tree.js';
import type { VaultCtx } from './context.js';
import { readKeptRelease, readLiveDirName, readReleaseBytes, readVaultConfigText, verifyKeptRelease } from './context.js';
import { parseManifest } from '../core/manifest.js';
import { NAMES, parseVaultConfig, releaseFiles } from './layout.js';
import type { VerifyProblem, VerifyReport } from './types.js';

type Found = { type: 'file' | 'dir' | 'symlink' | 'other'; mode: number; size: number; abs: string };

function problem(code: ErrorCode, path: string, message: string): VerifyProblem {
  return { code, path, message, detail: message };
}

/** A thrown error as a problem; a `where` inside the vault is shown relative to it, like every other problem path. */
function problemFrom(e: unknown, path: string, vault: string): VerifyProblem {
  if (!isSentinelError(e)) return problem('io', path, String(e));
  const where = e.where ?? path;
  if (!isAbsolute(where)) return problem(e.code, path, where === path ? e.message : `${e.message} [${where}]`);
  const rel = relative(vault, where);
  return problem(e.code, rel.startsWith('..') ? where : rel === '' ? '.' : rel, e.message);
}

/** lstat walk that reports every entry, whatever its type; unreadable directories become problems. */
async function walk(root: string, problems: VerifyProblem[], where: (abs: string) => string, onEntry: (rel: string, f: Found) => void): Promise<Map<string, Found>> {
  const found = new Map<string, Found>();
  let since = performance.now();
  const visit = async (dir: string, rel: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      problems.push(problem('io', where(dir), `cannot list directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`));
      return;
    }
    for (const name of names.sort()) {
      const abs = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      // Synchronous lstat: one libuv round trip per entry costs far more than the call itself.
      const st = lstatSync(abs);
      if (performance.now() - since > 20) {
        await new Promise((resolve) => setImmediate(resolve));
        since = performance.now();
      }
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      const f: Found = { type, mode: st.mode & 0o7777, size: st.size, abs };
      found.set(r, f);
      onEntry(r, f);
      if (type === 'dir') await visit(abs, r);
    }
  };
  await visit(root, '');
  return found;
}

const FLAG_SLICE = 512;
/** Files per hash job handed to the pool during the walk. */
const HASH_BATCH = 512;

/** Flags of each path; a path whose flags cannot be read is reported as such. */
async function checkSealed(ctx: VaultCtx, paths: string[], where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  const store = ctx.deps.flags;
  for (let i = 0; i < paths.length; i += FLAG_SLICE) {
    const slice = paths.slice(i, i + FLAG_SLICE);
    let sealed: (boolean | { failed: string })[];
    try {
      // One batched read per slice (statx where available); a turn of the event loop between slices keeps the hash pool fed.
      sealed = await areImmutable(store, slice);
    } catch {
      // Some path could not be read: ask one by one so each failure is named.
      sealed = [];
      for (const p of slice) {
        try {
          sealed.push(((await store.getFlags(p)) & FS_IMMUTABLE_FL) !== 0);
        } catch (e) {
          sealed.push({ failed: messageOf(e) });
        }
      }
    }
    slice.forEach((p, j) => {
      const f = sealed[j];
      if (typeof f === 'object') problems.push(problem('unsealed', where(p), `cannot read the immutable flag: ${f.failed}`));
      else if (f !== true) problems.push(problem('unsealed', where(p), 'not immutable (+i missing)'));
    });
    if (i + FLAG_SLICE < paths.length) await new Promise((resolve) => setImmediate(resolve));
  }
}

function describeType(t: string): string {
  return t === 'other' ? 'device, fifo or socket' : t;
}

function versionOf(ctx: VaultCtx, bytes: Uint8Array): number | null {
  try {
    return parseManifest(bytes, ctx.limits).version;
  } catch {
    return null;
  }
}

/** What verifying one release directory found. */
export interface ReleaseCheck {
  problems: VerifyProblem[];
  checkedFiles: number;
  checkedBytes: number;
}

// Why: the tree must equal its signed manifest exactly; used by verify, rollback and the daemon's tamper watch.
export async function verifyRelease(
  ctx: VaultCtx,
  dir: string,
  v: VerifiedManifest,
  opts: { onProgress?: (done: number, total: number) => void; inspection?: TreeInspection },
): Promise<ReleaseCheck> {
  const problems: VerifyProblem[] = [];
  const files = releaseFiles(dir);
  const rel = (abs: string) => relative(ctx.path, abs) || '.';
  const treeRel = (abs: string) => `${relative(ctx.path, files.tree)}/${relative(files.tree, abs)}`;

  // The release directory holds exactly manifest.json, signatures.json and tree/.
  const top = await readdir(dir);
  for (const name of top) {
    if (name !== NAMES.manifest && name !== NAMES.signatures && name !== NAMES.tree) problems.push(problem('tampered', rel(join(dir, name)), 'extra entry in the release directory'));
  }
  let treeSt;
  try {
    treeSt = await lstat(files.tree);
  } catch {
    problems.push(problem('tampered', rel(files.tree), 'release tree is missing'));
    return { problems, checkedFiles: 0, checkedBytes: 0 };
  }
  if (!treeSt.isDirectory()) {
    problems.push(problem('tampered', rel(files.tree), 'release tree is not a directory'));
    return { problems, checkedFiles: 0, checkedBytes: 0 };
  }

  const addon = nativeAddonOf(ctx.deps.flags);
  if (addon !== null && typeof addon.inspectFilesAsync === 'function') {
    return verifyTreeNative(ctx, addon, dir, v, opts, problems);
  }

  // Files of the right type and size are handed to the hash pool in batches while the walk goes on.
  const byPath = new Map(v.manifest.entries.map((e) => [e.path, e]));
  const total = v.manifest.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const toHash: { entry: FileEntry; abs: string }[] = [];
  const jobs: Promise<HashResult[]>[] = [];
  const jobDone: number[] = [];
  let batch: string[] = [];
  const flush = () => {
    if (batch.length === 0) return;
    const i = jobDone.push(0) - 1;
    const onProgress = opts.onProgress;
    const job = ctx.deps.hash.hashFiles(
      batch,
      onProgress === undefined
        ? undefined
        : (doneBytes) => {
            jobDone[i] = doneBytes;
            onProgress(jobDone.reduce((a, b) => a + b, 0), total);
          },
    );
    job.catch(() => undefined);
    jobs.push(job);
    batch = [];
  };
  const found = await walk(files.tree, problems, treeRel, (path, f) => {
    const e = byPath.get(path);
    if (e?.type !== 'file' || f.type !== 'file' || f.size !== e.size) return;
    toHash.push({ entry: e, abs: f.abs });
    batch.push(f.abs);
    if (batch.length >= HASH_BATCH) flush();
  });
  flush();

  const sealTargets: string[] = [];
  for (const e of v.manifest.entries) {
    const f = found.get(e.path);
    const where = `${relative(ctx.path, files.tree)}/${e.path}`;
    if (f === undefined) {
      problems.push(problem('tampered', where, `${e.type} is missing`));
      continue;
    }
    if (f.type !== e.type) {
      problems.push(problem('tampered', where, `expected a ${e.type}, found a ${describeType(f.type)}`));
      continue;
    }
    if (e.type === 'symlink') {
      const target = await readlink(f.abs);
      if (target !== e.target) problems.push(problem('tampered', where, `symlink points to ${target}, manifest says ${e.target}`));
      continue;
    }
    sealTargets.push(f.abs);
    if (f.mode !== e.mode) problems.push(problem('tampered', where, `mode ${f.mode.toString(8)}, manifest says ${e.mode.toString(8)}`));
    if (e.type === 'file' && f.size !== e.size) problems.push(problem('size-mismatch', where, `size ${f.size}, manifest says ${e.size}`));
  }
  for (const [path, f] of found) {
    if (!byPath.has(path)) problems.push(problem('tampered', `${relative(ctx.path, files.tree)}/${path}`, `extra ${describeType(f.type)} not in the manifest`));
  }

  // Flags are read while the pool finishes hashing.
  await checkSealed(ctx, [...sealTargets, files.tree, files.manifest, files.signatures, dir], rel, problems);
  let checkedBytes = 0;
  const results = new Map((await Promise.all(jobs)).flat().map((r) => [r.path, r]));
  for (const f of toHash) {
    const r = results.get(f.abs);
    const where = `${relative(ctx.path, files.tree)}/${f.entry.path}`;
    if (r === undefined) problems.push(problem('io', where, 'file was not hashed'));
    else if (r.size !== f.entry.size) problems.push(problem('size-mismatch', where, `size ${r.size} while hashing, manifest says ${f.entry.size}`));
    else if (r.sha256 !== f.entry.sha256) problems.push(problem('hash-mismatch', where, `SHA-256 ${r.sha256}, manifest says ${f.entry.sha256}`));
    checkedBytes += f.entry.size;
  }
  return { problems, checkedFiles: toHash.length, checkedBytes };
}

/** Relative paths under `root` (pre-order, names sorted), from readdir alone: no lstat per entry. */
function listTree(root: string, problems: VerifyProblem[], where: (abs: string) => string): string[] {
  const out: string[] = [];
  const visit = (abs: string, rel: string): void => {
    let ents;
    try {
      ents = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      problems.push(problem('io', where(abs), `cannot list directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`));
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of ents) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      out.push(r);
      // Dirent types are lstat types (readdir's d_type, or an lstat where the filesystem gives none).
      if (d.isDirectory()) visit(`${abs}/${d.name}`, r);
    }
  };
  visit(root, '');
  return out;
}

/** A native tree inspection under way: its entry list, problems met listing it, and the records. */
export interface TreeInspection {
  paths: string[];
  listProblems: VerifyProblem[];
  /** Bytes hashed so far (polled for onProgress). */
  progress: BigInt64Array;
  /** Whether each regular file was hashed whatever its size (the manifest was not known yet). */
  hashedAny: boolean;
  result: Promise<InspectedEntries | null>;
}

// Lists the tree and starts the one native pass over it. With `manifest` undefined (verify starts
// before the signatures are checked) every regular file the limits allow is hashed; the signed
// manifest decides later what counts. Never rejects: a failed pass resolves with an error record.
function startTreeInspection(ctx: VaultCtx, addon: NativeAddon, dir: string, entries: readonly ManifestEntry[] | undefined): TreeInspection {
  const files = releaseFiles(dir);
  const treePrefix = relative(ctx.path, files.tree);
  const listProblems: VerifyProblem[] = [];
  const paths = listTree(files.tree, listProblems, (abs) => `${treePrefix}/${relative(files.tree, abs)}`);
  const expected = new Float64Array(paths.length);
  if (entries === undefined) expected.fill(-2);
  else {
    const byPath = new Map<string, ManifestEntry>();
    for (const e of entries) byPath.set(e.path, e);
    for (let i = 0; i < paths.length; i++) {
      const e = byPath.get(paths[i]!);
      expected[i] = e?.type === 'file' ? e.size : -1;
    }
  }
  const progress = new BigInt64Array(1);
  const result = inspectEntries(addon, files.tree, paths, expected, nativeThreads(), { hashAnyMax: ctx.limits.maxFileBytes, progress });
  result.catch(() => undefined);
  return { paths, listProblems, progress, hashedAny: entries === undefined, result };
}

/** How often the progress callback is fed while the native pass runs. */
const PROGRESS_MS = 100;

// The tree check from one native pass: lstat, seal bits and SHA-256 of every entry were read on
// the libuv pool (one thread per core); the main thread only compares them with the manifest.
async function verifyTreeNative(
  ctx: VaultCtx,
  addon: NativeAddon,
  dir: string,
  v: VerifiedManifest,
  opts: { onProgress?: (done: number, total: number) => void; inspection?: TreeInspection },
  problems: VerifyProblem[],
): Promise<ReleaseCheck> {
  const files = releaseFiles(dir);
  const rel = (abs: string) => relative(ctx.path, abs) || '.';
  const treePrefix = relative(ctx.path, files.tree);
  const entries = v.manifest.entries;
  const inspection = opts.inspection ?? startTreeInspection(ctx, addon, dir, entries);
  const { paths } = inspection;
  problems.push(...inspection.listProblems);
  const onProgress = opts.onProgress;
  const total = entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  const timer = onProgress === undefined ? undefined : setInterval(() => onProgress(Math.min(Number(inspection.progress[0]), total), total), PROGRESS_MS);
  let s: InspectedEntries | null;
  try {
    s = await inspection.result;
  } finally {
    if (timer !== undefined) clearInterval(timer);
  }
  if (s === null || s.count !== paths.length) throw new SentinelError('internal', 'the native tree inspection returned no answer', { where: files.tree });
  onProgress?.(total, total);
  const found = new Map<string, number>();
  for (let i = 0; i < paths.length; i++) found.set(paths[i]!, i);

  const seal: VerifyProblem[] = [];
  const hashes: VerifyProblem[] = [];
  const inManifest = new Set<string>();
  let checkedFiles = 0;
  let checkedBytes = 0;
  for (const e of entries) {
    inManifest.add(e.path);
    const j = found.get(e.path);
    const where = `${treePrefix}/${e.path}`;
    if (j === undefined) {
      problems.push(problem('tampered', where, `${e.type} is missing`));
      continue;
    }
    const type = s.type(j);
    if (type === null) {
      problems.push(problem('io', where, `cannot lstat: ${s.statErrno(j) ?? 'EIO'}`));
      continue;
    }
    if (type !== e.type) {
      problems.push(problem('tampered', where, `expected a ${e.type}, found a ${describeType(type)}`));
      continue;
    }
    if (e.type === 'symlink') {
      const target = await readlink(join(files.tree, e.path));
      if (target !== e.target) problems.push(problem('tampered', where, `symlink points to ${target}, manifest says ${e.target}`));
      continue;
    }
    const bits = s.sealBits(j);
    if (typeof bits === 'string') seal.push(problem('unsealed', where, `cannot read the immutable flag: ${bits}`));
    else if ((bits & FS_IMMUTABLE_FL) === 0) seal.push(problem('unsealed', where, 'not immutable (+i missing)'));
    if (s.mode(j) !== e.mode) problems.push(problem('tampered', where, `mode ${s.mode(j).toString(8)}, manifest says ${e.mode.toString(8)}`));
    if (e.type !== 'file') continue;
    if (s.size(j) !== e.size) {
      problems.push(problem('size-mismatch', where, `size ${s.size(j)}, manifest says ${e.size}`));
      continue;
    }
    checkedFiles += 1;
    checkedBytes += e.size;
    const err = s.hashErrno(j);
    if (err !== null) hashes.push(problem(codeForErrno(err, 'tree-entry'), where, `file could not be hashed (${err})`));
    else if (!s.hashed(j)) hashes.push(problem('io', where, 'file was not hashed'));
    else if (s.hashedBytes(j) !== e.size) hashes.push(problem('size-mismatch', where, `size ${s.hashedBytes(j)} while hashing, manifest says ${e.size}`));
    else {
      const sha = s.sha256(j);
      if (sha !== e.sha256) hashes.push(problem('hash-mismatch', where, `SHA-256 ${sha}, manifest says ${e.sha256}`));
    }
  }
  for (let i = 0; i < paths.length; i++) {
    if (!inManifest.has(paths[i]!)) problems.push(problem('tampered', `${treePrefix}/${paths[i]!}`, `extra ${describeType(s.type(i) ?? 'other')} not in the manifest`));
  }
  problems.push(...seal);
  await checkSealed(ctx, [files.tree, files.manifest, files.signatures, dir], rel, problems);
  problems.push(...hashes);
  return { problems, checkedFiles, checkedBytes };
}

// Why: the whole fail-closed check behind `sentinel vault verify`; never throws for an integrity finding.
export async function verifyVault(ctx: VaultCtx, opts: { trust?: TrustPolicy; onProgress?: (done: number, total: number) => void } = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const { layout } = ctx;
  const rel = (abs: string) => relative(ctx.path, abs) || '.';
  const report: VerifyReport = {
    ok: false,
    releaseId: null,
    releaseDir: null,
    version: null,
    signers: [],
    checkedFiles: 0,
    checkedBytes: 0,
    trustSource: opts.trust === undefined ? 'vault.json' : 'override',
    problems,
  };

  // vault.json on disk must still parse and match what was opened (an override does not excuse a rewrite).
  try {
    const onDisk = parseVaultConfig(await readVaultConfigText(layout.config), layout.config);
    if (onDisk.vaultId !== ctx.config.vaultId) problems.push(problem('tampered', NAMES.config, 'vault id changed since the vault was opened'));
  } catch (e) {
    problems.push(problemFrom(e, NAMES.config, ctx.path));
  }
  await checkSealed(ctx, [layout.config, layout.releases, layout.bundles, layout.state, layout.highest, layout.root], rel, problems);

  let live: string | null = null;
  try {
    live = await readLiveDirName(ctx);
    if (live === null) problems.push(problem('tampered', NAMES.current, 'no release deployed'));
  } catch (e) {
    problems.push(problemFrom(e, NAMES.current, ctx.path));
  }
  if (live !== null) {
    const dir = layout.release(live);
    report.releaseDir = live;
    try {
      const info = await readReleaseBytes(ctx, dir);
      report.releaseId = info.releaseId;
      // The native pass over the tree runs on the libuv pool while this thread checks the
      // signatures and the release id (SHA-512 of the manifest); nothing is trusted before they pass.
      const addon = nativeAddonOf(ctx.deps.flags);
      const inspection = addon !== null && typeof addon.inspectFilesAsync === 'function' ? startTreeInspection(ctx, addon, dir, undefined) : undefined;
      let v: VerifiedManifest;
      try {
        v = verifyKeptRelease(ctx, info, opts.trust ?? ctx.config.trust);
      } catch (e) {
        report.version = versionOf(ctx, info.manifestBytes);
        await inspection?.result.catch(() => undefined);
        throw e;
      }
      report.version = v.manifest.version;
      report.signers = v.signers;
      const check = await verifyRelease(ctx, dir, v, {
        ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
        ...(inspection === undefined ? {} : { inspection }),
      });
      problems.push(...check.problems);
      report.checkedFiles = check.checkedFiles;
      report.checkedBytes = check.checkedBytes;
    } catch (e) {
      problems.push(problemFrom(e, rel(dir), ctx.path));
    }
  }
  report.ok = problems.length === 0;
  return report;
}

// Why: the live manifest, verified against the vault's policy, for the daemon and `vault manifest`.
export async function liveVerifiedManifest(ctx: VaultCtx): Promise<VerifiedManifest> {
  const live = await readLiveDirName(ctx);
  if (live === null) throw new SentinelError('not-found', 'no release deployed', { where: ctx.layout.current });
  return verifyKeptRelease(ctx, await readKeptRelease(ctx, ctx.layout.release(live)), ctx.config.trust);
}
