// `vault verify` (docs/VAULT.md#invariants 5 and 6): fail-closed check of the live release —
// signatures against the trust policy (the vault's own or one given from outside), the tree
// against its manifest (core's checkTree over what the vault's tree inspector read), and +i on the
// vault's own paths. A flag that cannot be read is a problem, never a pass.
import { lstatSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { SentinelError, isSentinelError, messageOf } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { parseManifest } from '../core/manifest.js';
import { describeXattrs } from '../core/tree-check.js';
import type { TreeCheck } from '../core/tree-check.js';
import { trustPolicyDifferences } from '../core/trust.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { FS_IMMUTABLE_FL, areImmutable } from '../adapters/flags.js';
import { defaultTreeInspector } from '../adapters/tree-inspector.js';
import { defaultXattrLister } from '../adapters/xattrs.js';
import type { TreeInspector, TreeReading } from '../adapters/tree-inspector.js';
import { anchorMismatchMessage } from './anchors.js';
import { takeEarlyReading } from './early-reading.js';
import type { VaultCtx } from './context.js';
import { readLiveDirName, readReleaseBytes, readVaultConfigText, verifyKeptRelease } from './context.js';
import { NAMES, parseVaultConfig, releaseFiles } from './layout.js';
import type { VerifyProblem, VerifyReport, VerifyScope } from './types.js';
import { checkKeptReleasesAndBundles, checkVaultEntries } from './verify-kept.js';
import { verifyLiveRelease } from './verify-live.js';
import type { LiveVerified } from './verify-live.js';
import { readHighestState } from './highest.js';
import type { KnownReleases } from './verify-kept.js';
import { unsafeAncestors, unsafeVaultDirs } from './safety.js';

function problem(code: ErrorCode, path: string, message: string): VerifyProblem {
  return { code, path, message, detail: message };
}

/** A thrown error as a problem; a `where` inside the vault is shown relative to it, like every other problem path. */
function problemFrom(e: unknown, path: string, vault: string): VerifyProblem {
  if (!isSentinelError(e)) return problem('io', path, messageOf(e));
  const where = e.where ?? path;
  if (!isAbsolute(where)) return problem(e.code, path, where === path ? e.message : `${e.message} [${where}]`);
  const rel = relative(vault, where);
  return problem(e.code, rel.startsWith('..') ? where : rel === '' ? '.' : rel, e.message);
}

const FLAG_SLICE = 512;

/** +i of each of the vault's own paths (not the tree's: the inspection reads those); a flag that cannot be read is a problem. */
async function checkSealed(ctx: VaultCtx, paths: string[], where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  const store = ctx.deps.flags;
  for (let i = 0; i < paths.length; i += FLAG_SLICE) {
    const slice = paths.slice(i, i + FLAG_SLICE);
    let sealed: (boolean | { failed: string })[];
    try {
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
      // A symlink carries no flags: the check that reads or walks that path names it, as tampered or insecure-path (never followed).
      if (typeof f === 'object' && lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() === true) return;
      if (typeof f === 'object') problems.push(problem('unsealed', where(p), `cannot read the immutable flag: ${f.failed}`));
      else if (f !== true) problems.push(problem('unsealed', where(p), 'not immutable (+i missing)'));
    });
  }
}

/** No untolerated extended attribute on the vault's own paths (its files, directories, `current`, each release's files and tree root). */
async function checkOwnXattrs(all: string[], where: (abs: string) => string, problems: VerifyProblem[]): Promise<void> {
  // A missing path is another check's problem (a missing file, no release deployed).
  const paths = all.filter((p) => lstatSync(p, { throwIfNoEntry: false }) !== undefined);
  const found = await defaultXattrLister().listPaths(paths);
  paths.forEach((p, i) => {
    const x = found[i];
    if (x === undefined || !x.ok) problems.push(problem('io', where(p), `cannot list the extended attributes: ${x?.ok === false ? x.error : 'not read'}`));
    else if (x.value.length > 0) problems.push(problem('tampered', where(p), describeXattrs(x.value)));
  });
}

function versionOf(ctx: VaultCtx, bytes: Uint8Array): number | null {
  try {
    return parseManifest(bytes, ctx.limits).version;
  } catch {
    return null;
  }
}

// The vault's way of reading a tree: the one its deps name, else the default for its flag store.
function inspectorOf(ctx: VaultCtx): TreeInspector {
  return ctx.deps.inspector ?? defaultTreeInspector(ctx.deps.flags, ctx.deps.hash);
}

/** What verifying one release directory found. */
export interface ReleaseCheck {
  problems: VerifyProblem[];
  checkedFiles: number;
  checkedBytes: number;
}

// Why: the tree must equal its signed manifest exactly (core's checkTree over what the vault's
// inspector read); used by verify, rollback and the daemon's tamper watch. `reading` is a tree
// reading verify started before the signatures were checked.
export async function verifyRelease(
  ctx: VaultCtx,
  dir: string,
  v: VerifiedManifest,
  opts: { onProgress?: (done: number, total: number) => void; reading?: TreeReading; tree?: TreeCheck },
): Promise<ReleaseCheck> {
  const problems: VerifyProblem[] = [];
  const files = releaseFiles(dir);
  const rel = (abs: string) => relative(ctx.path, abs) || '.';

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
  // Every entry must have the tree root's owner (checkTree); the root's uid must be the vault's (root, or the user running the sentinel).
  const vaultUid = (await lstat(ctx.layout.root)).uid;
  if (treeSt.uid !== vaultUid) problems.push(problem('tampered', rel(files.tree), `owned by uid ${treeSt.uid}; the vault belongs to uid ${vaultUid}`));

  // `tree`: the reading's own answer from the manifest's bytes (verify-live.ts), the entries not parsed.
  let check = opts.tree;
  if (check === undefined) {
    const entries = v.manifest.entries;
    const reading = opts.reading ?? inspectorOf(ctx).start(files.tree, entries, { maxFileBytes: ctx.limits.maxFileBytes });
    check = await reading.check(entries, opts.onProgress);
  }
  await checkSealed(ctx, [files.tree, files.manifest, files.signatures, dir], rel, problems);
  await checkOwnXattrs([files.tree, files.manifest, files.signatures, dir], rel, problems);
  const treePrefix = relative(ctx.path, files.tree);
  for (const p of check.problems) problems.push(problem(p.code, `${treePrefix}/${p.path}`, p.message));
  return { problems, checkedFiles: check.checkedFiles, checkedBytes: check.checkedBytes };
}

// Why: the whole fail-closed check behind `sentinel vault verify`; never throws for an integrity finding.
export async function verifyVault(ctx: VaultCtx, opts: { trust?: TrustPolicy; onProgress?: (done: number, total: number) => void; scope?: VerifyScope } = {}): Promise<VerifyReport> {
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
    kept: null,
    problems,
  };

  // Who may change the way in (docs/SECURITY.md#what-the-vault-requires-of-its-directories).
  try {
    for (const u of [...unsafeAncestors(layout.root), ...unsafeVaultDirs(layout)]) problems.push(problemFrom(new SentinelError('insecure-path', u.message, { where: u.path }), u.path, ctx.path));
  } catch (e) {
    problems.push(problemFrom(e, '.', ctx.path));
  }
  // Reported last, so a signature problem of the live release stays the first one named.
  let policyProblem: VerifyProblem | null = null;
  // vault.json on disk must still parse and match what was opened (an override does not excuse a rewrite).
  try {
    const onDisk = parseVaultConfig(await readVaultConfigText(layout.config), layout.config);
    if (onDisk.vaultId !== ctx.config.vaultId) problems.push(problem('tampered', NAMES.config, 'vault id changed since the vault was opened'));
    // With anchors from outside, the vault's own policy must be theirs: else a later deploy without them would follow it.
    const differences = opts.trust === undefined ? [] : trustPolicyDifferences(onDisk.trust, opts.trust);
    if (differences.length > 0) policyProblem = problem('tampered', NAMES.config, anchorMismatchMessage(differences));
  } catch (e) {
    problems.push(problemFrom(e, NAMES.config, ctx.path));
  }
  await checkSealed(ctx, [layout.config, layout.releases, layout.bundles, layout.state, layout.highest, layout.root], rel, problems);
  await checkOwnXattrs([layout.config, layout.current, layout.releases, layout.bundles, layout.state, layout.highest, layout.root], rel, problems);

  // Release directories whose signatures verified in this run, with the bytes verified: the stored
  // bundles are compared with those, not read, verified and parsed a second time.
  const verified: KnownReleases = new Map();
  let live: string | null = null;
  // Where the problem of a missing `current` goes (named once the vault's listing says which it is).
  let noLiveAt: number | null = null;
  try {
    live = await readLiveDirName(ctx);
    if (live === null) noLiveAt = problems.length;
  } catch (e) {
    problems.push(problemFrom(e, NAMES.current, ctx.path));
  }
  if (live !== null) {
    const dir = layout.release(live);
    report.releaseDir = live;
    try {
      const info = await readReleaseBytes(ctx, dir);
      report.releaseId = info.releaseId;
      // The tree is read (on the libuv pool, with the native inspector) while this thread checks
      // the signatures and the release id (SHA-512 of the manifest); nothing read is trusted before they pass.
      // The CLI may have started this very reading already (early-reading.ts); this thread holds the shared lock now.
      const inspector = inspectorOf(ctx);
      const tree = releaseFiles(dir).tree;
      const early = inspector.kind === 'native' ? takeEarlyReading(tree, ctx.limits.maxFileBytes) : null;
      const reading = early ?? inspector.start(tree, undefined, { maxFileBytes: ctx.limits.maxFileBytes });
      let check: ReleaseCheck;
      try {
        let found: LiveVerified;
        try {
          // Without a progress bar to feed, an intact tree is answered by the addon from the manifest's bytes.
          found = await verifyLiveRelease(ctx, info, opts.trust ?? ctx.config.trust, reading, opts.onProgress === undefined);
        } catch (e) {
          report.version = versionOf(ctx, info.manifestBytes);
          throw e;
        }
        const { v } = found;
        report.version = found.version;
        report.signers = v.signers;
        verified.set(live, { bytes: info, v });
        check = await verifyRelease(ctx, dir, v, { ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }), reading, ...(found.tree === null ? {} : { tree: found.tree }) });
      } finally {
        await reading.abandon();
      }
      problems.push(...check.problems);
      report.checkedFiles = check.checkedFiles;
      report.checkedBytes = check.checkedBytes;
    } catch (e) {
      problems.push(problemFrom(e, rel(dir), ctx.path));
    }
  }
  // The vault's own directories hold nothing unlisted; with scope 'all', every kept release and stored bundle is checked.
  const problemOf = (e: unknown, path: string): VerifyProblem => problemFrom(e, path, ctx.path);
  const add = (p: VerifyProblem): void => void problems.push(p);
  const listing = await checkVaultEntries(ctx, problemOf, add);
  if (noLiveAt !== null) problems.splice(noLiveAt, 0, await noLiveProblem(ctx, listing));
  if ((opts.scope ?? 'all') === 'all') {
    const trust = opts.trust ?? ctx.config.trust;
    const checkOne = async (name: string): Promise<void> => {
      const dir = layout.release(name);
      try {
        const bytes = await readReleaseBytes(ctx, dir);
        const v = verifyKeptRelease(ctx, bytes, trust);
        verified.set(name, { bytes, v });
        problems.push(...(await verifyRelease(ctx, dir, v, {})).problems);
      } catch (e) {
        problems.push(problemFrom(e, rel(dir), ctx.path));
      }
    };
    report.kept = await checkKeptReleasesAndBundles(ctx, listing, live, trust, { checkRelease: checkOne, verified }, problemOf, add);
  }
  if (policyProblem !== null) problems.push(policyProblem);
  report.ok = problems.length === 0;
  return report;
}

// Why: a vault fresh from `vault init` has nothing to verify, which is no tamper (`not-found`: verify could
// not check); `current` gone from a vault that has had a release (one kept, a stored bundle, a highest
// version above 0, or highest.json unreadable) is one.
async function noLiveProblem(ctx: VaultCtx, listing: { releaseDirs: string[]; bundles: Map<string, string> }): Promise<VerifyProblem> {
  const highest = await readHighestState(ctx).then((h) => h.version, () => null);
  if (highest === 0 && listing.releaseDirs.length === 0 && listing.bundles.size === 0) return problem('not-found', NAMES.current, 'no release deployed yet: nothing to verify');
  const had = [highest === null ? 'state/highest.json unreadable' : `highest version ${String(highest)}`, `${String(listing.releaseDirs.length)} kept release(s)`, `${String(listing.bundles.size)} stored bundle(s)`];
  return problem('tampered', NAMES.current, `no release is live (\`current\` is missing), though the vault has had one: ${had.join(', ')}`);
}

// Why: the live manifest, verified against the vault's policy, for the daemon and `vault manifest`.
export async function liveVerifiedManifest(ctx: VaultCtx): Promise<VerifiedManifest> {
  const live = await readLiveDirName(ctx);
  if (live === null) throw new SentinelError('not-found', 'no release deployed', { where: ctx.layout.current });
  // The bytes only: verification parses the manifest, once.
  return verifyKeptRelease(ctx, await readReleaseBytes(ctx, ctx.layout.release(live)), ctx.config.trust);
}
