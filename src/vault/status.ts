// `status()` (docs/VAULT.md#status): a cheap snapshot that says what it checked. The live release's
// signatures are verified against the vault's policy and its release id and vault id checked, from
// the manifest's head and tail (core's readManifestSummary: the signed bytes' version, times and
// vault id, the entries not read); the kept releases are listed from their directory names, which
// the deploy named after each signed manifest's version and SHA-512, inside the sealed releases/.
// Nothing else is read of them: `verify` checks entries, trees, kept releases and bundles in full.
import { lstatSync } from 'node:fs';
import { isSentinelError } from '../core/errors.js';
import { readManifestSummary } from '../core/manifest-summary.js';
import { parseSignatures } from '../core/signature.js';
import { releaseIdOf, verifyManifestSignatures } from '../core/trust.js';
import { assertReleaseBinding, isSealed, listReleaseDirs, readLiveDirName, readReleaseBytes } from './context.js';
import type { VaultCtx } from './context.js';
import { ed25519Verify, sha512, sha512Started } from './ed25519.js';
import { readHighestState } from './highest.js';
import { crashMarkerFound } from './lock.js';
import { parseReleaseDirName, releaseFiles } from './layout.js';
import type { KeptRelease, VaultStatus } from './types.js';

/** What status never reads (docs/VAULT.md#status); `vault verify` checks each. */
export const NOT_CHECKED_BY_STATUS = ['the live tree', "the live manifest's entries", 'kept releases other than the live one', 'stored bundles'];

/** `code: message` of what stopped a check. */
function problemText(e: unknown): string {
  return isSentinelError(e) ? `${e.code}: ${e.message}` : String(e);
}

/** Whether `path` is a regular file (never followed). */
function isRegularFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
}

/** The version a release id names (`r<version>-<hex>`). */
function versionOfReleaseId(releaseId: string): number {
  return Number(releaseId.slice(1, releaseId.indexOf('-')));
}

// The live release's signed head: signatures against the policy, then the version and vault id of
// those very bytes, the release id against the directory's name. Returns the signers. The release
// id's SHA-512 of the manifest runs on a pool thread while the signatures are checked here (each
// check hashes the same bytes inside OpenSSL); it is taken only after they pass, in the same order
// and with the same errors as before.
async function checkLiveHead(ctx: VaultCtx, dirName: string): Promise<string[]> {
  const r = await readReleaseBytes(ctx, ctx.layout.release(dirName));
  const signatures = parseSignatures(r.signatureBytes, ctx.limits);
  const releaseDigest = sha512Started(r.manifestBytes);
  const signers = verifyManifestSignatures(r.manifestBytes, signatures, ctx.config.trust, ctx.limits, { verify: ed25519Verify });
  const summary = readManifestSummary(r.manifestBytes, ctx.limits);
  const digest = await releaseDigest();
  assertReleaseBinding(ctx, r, releaseIdOf(summary, r.manifestBytes, (bytes) => (bytes === r.manifestBytes ? digest : sha512(bytes))), summary.vaultId);
  return signers;
}

export async function vaultStatus(ctx: VaultCtx): Promise<VaultStatus> {
  const { layout, config } = ctx;
  let live: string | null = null;
  let liveProblem: string | null = null;
  let signers: string[] = [];
  try {
    live = await readLiveDirName(ctx);
    if (live !== null) signers = await checkLiveHead(ctx, live);
  } catch (e) {
    liveProblem = problemText(e);
  }
  const releases: KeptRelease[] = [];
  for (const name of await listReleaseDirs(ctx)) {
    const { releaseId } = parseReleaseDirName(name)!;
    const isLive = name === live;
    releases.push({ releaseDir: name, releaseId, version: versionOfReleaseId(releaseId), live: isLive, checked: isLive && liveProblem === null });
  }
  releases.sort((a, b) => a.version - b.version || (a.releaseDir < b.releaseDir ? -1 : 1));
  const mustBeSealed = [layout.root, layout.config, layout.releases, layout.bundles, layout.state, layout.highest];
  for (const r of releases) {
    const f = releaseFiles(layout.release(r.releaseDir));
    mustBeSealed.push(f.dir, f.manifest, f.signatures, f.tree);
  }
  // Each kept release's stored bundle, the heal source (one per release id; a missing one, or one that is
  // not a regular file — a directory, a symlink — counts as unsealed: a heal refuses it as verify does).
  const bundles = new Set([...new Set(releases.map((r) => r.releaseId))].map((id) => layout.bundle(id)));
  mustBeSealed.push(...bundles);
  const unsealedPaths: string[] = [];
  for (const p of mustBeSealed) {
    const sealed = (!bundles.has(p) || isRegularFile(p)) && (await isSealed(ctx, p).catch(() => false));
    if (!sealed) unsealedPaths.push(p);
  }
  let deployedAt: string | null = null;
  try {
    deployedAt = lstatSync(layout.current).mtime.toISOString();
  } catch {
    deployedAt = null;
  }
  const state = await readHighestState(ctx).catch(() => ({ version: 0, releaseId: null }));
  const interrupted = await crashMarkerFound(layout.lock);
  const liveParsed = live === null ? null : parseReleaseDirName(live);
  return {
    path: ctx.path,
    vaultId: config.vaultId,
    threshold: config.trust.threshold,
    trustedKeys: config.trust.keys.map((k) => k.id),
    version: liveParsed === null ? null : versionOfReleaseId(liveParsed.releaseId),
    releaseId: liveParsed?.releaseId ?? null,
    releaseDir: live,
    signers,
    liveProblem,
    notChecked: [...NOT_CHECKED_BY_STATUS],
    sealed: unsealedPaths.length === 0,
    unsealedPaths,
    interrupted,
    deployedAt,
    highestVersion: releases.reduce((m, r) => Math.max(m, r.version), state.version),
    releases,
  };
}
