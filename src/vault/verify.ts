// `vault verify` (docs/VAULT.md#invariants 5 and 6): fail-closed check of the live release —
// signatures against the trust policy (the vault's own or one given from outside), the tree
// against its manifest (core's checkTree over what the vault's tree inspector read), and +i on the
// vault's own paths. A flag that cannot be read is a problem, never a pass.
import { isAbsolute, relative } from 'node:path';
import { SentinelError, isSentinelError, messageOf } from '../core/errors.js';
import { parseManifest } from '../core/manifest.js';
import type { TreeCheck } from '../core/tree-check.js';
import { trustPolicyDifferences } from '../core/trust.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import { defaultTreeInspector } from '../adapters/tree-inspector.js';
import type { TreeInspector, TreeReading } from '../adapters/tree-inspector.js';
import { anchorMismatchMessage } from './anchors.js';
import { takeEarlyReading } from './early-reading.js';
import type { VaultCtx } from './context.js';
import { readLiveDirName, readReleaseBytes, readVaultConfigText, verifyKeptRelease } from './context.js';
import { NAMES, parseVaultConfig, releaseFiles } from './layout.js';
import type { VerifyProblem, VerifyReport, VerifyScope } from './types.js';
import { checkKeptReleasesAndBundles, checkVaultEntries } from './verify-kept.js';
import { verifyLiveRelease } from './verify-live.js';
import { checkOwnXattrs, checkReleaseDir, checkSealed, problem } from './verify-own.js';
import type { ReleaseDirCheck } from './verify-own.js';
import type { LiveVerified } from './verify-live.js';
import { readHighestState } from './highest.js';
import { INTERRUPTED } from './lock.js';
import type { KnownReleases, VaultListing } from './verify-kept.js';
import { unsafeAncestors, unsafeVaultDirs } from './safety.js';

/** A thrown error as a problem; a `where` inside the vault is shown relative to it, like every other problem path. */
function problemFrom(e: unknown, path: string, vault: string): VerifyProblem {
  if (!isSentinelError(e)) return problem('io', path, messageOf(e));
  const where = e.where ?? path;
  if (!isAbsolute(where)) return problem(e.code, path, where === path ? e.message : `${e.message} [${where}]`);
  const rel = relative(vault, where);
  return problem(e.code, rel.startsWith('..') ? where : rel === '' ? '.' : rel, e.message);
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
// reading verify started before the signatures were checked; `own`, the release directory's own
// checks verify started while that reading hashes (else they run here, first).
export async function verifyRelease(
  ctx: VaultCtx,
  dir: string,
  v: VerifiedManifest,
  opts: { onProgress?: (done: number, total: number) => void; reading?: TreeReading; tree?: TreeCheck; own?: Promise<ReleaseDirCheck> },
): Promise<ReleaseCheck> {
  const files = releaseFiles(dir);
  const { problems, tree } = await (opts.own ?? checkReleaseDir(ctx, dir));
  if (!tree) return { problems, checkedFiles: 0, checkedBytes: 0 };
  // `tree`: the reading's own answer from the manifest's bytes (verify-live.ts), the entries not parsed.
  let check = opts.tree;
  if (check === undefined) {
    const entries = v.manifest.entries;
    const reading = opts.reading ?? inspectorOf(ctx).start(files.tree, entries, { maxFileBytes: ctx.limits.maxFileBytes });
    check = await reading.check(entries, opts.onProgress);
  }
  const treePrefix = relative(ctx.path, files.tree);
  for (const p of check.problems) problems.push(problem(p.code, `${treePrefix}/${p.path}`, p.message));
  return { problems, checkedFiles: check.checkedFiles, checkedBytes: check.checkedBytes };
}

// Why: the whole fail-closed check behind `sentinel vault verify`; never throws for an integrity finding.
// `interrupted`: the crash marker was found under verify's lock; named first, with what to run (a check re-seals nothing).
export async function verifyVault(ctx: VaultCtx, opts: { trust?: TrustPolicy; onProgress?: (done: number, total: number) => void; scope?: VerifyScope; interrupted?: boolean } = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const { layout } = ctx;
  const rel = (abs: string) => relative(ctx.path, abs) || '.';
  if (opts.interrupted === true) problems.push(problem('tampered', rel(layout.lock), INTERRUPTED));
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
  const problemOf = (e: unknown, path: string): VerifyProblem => problemFrom(e, path, ctx.path);
  // The vault's own directories hold nothing unlisted: listed while the rest is checked (the live
  // tree hashes meanwhile), its problems named where they always were, after the live release's.
  const listed: VerifyProblem[] = [];
  const listingRead = checkVaultEntries(ctx, problemOf, (p) => void listed.push(p));
  listingRead.catch(() => undefined);

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
      // The release directory's own checks (not the tree's) while the tree hashes; used only once the signatures verify.
      const own = checkReleaseDir(ctx, dir);
      own.catch(() => undefined);
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
        check = await verifyRelease(ctx, dir, v, { ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }), reading, own, ...(found.tree === null ? {} : { tree: found.tree }) });
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
  // With scope 'all', every kept release and stored bundle is checked.
  const add = (p: VerifyProblem): void => void problems.push(p);
  const listing: VaultListing = await listingRead;
  problems.push(...listed);
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
