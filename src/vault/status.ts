// `status()` (docs/VAULT.md#status): a cheap snapshot that says what it checked. The live release's
// signatures are verified against the vault's policy and its release id and vault id checked, from
// the manifest's head and tail (core's readManifestSummary: the signed bytes' version, times and
// vault id, the entries not read); the kept releases are listed from their directory names, which
// the deploy named after each signed manifest's version and SHA-512, inside the sealed releases/.
// Nothing else is read of them: `verify` checks entries, trees, kept releases and bundles in full.
import { lstat } from 'node:fs/promises';
import { isSentinelError } from '../core/errors.js';
import { readManifestSummary } from '../core/manifest-summary.js';
import { decodeBase64, keyIdOf } from '../core/keys.js';
import type { PublicKey } from '../core/keys.js';
import { parseSignatures, signatureInput } from '../core/signature.js';
import type { BundleSignature } from '../core/signature.js';
import { releaseIdOf, verifyManifestSignatures } from '../core/trust.js';
import { assertReleaseBinding, isSealed, listReleaseDirs, readLiveDirName, readReleaseBytes } from './context.js';
import type { VaultCtx } from './context.js';
import { ed25519Prechecked, sha512, sha512Started } from './ed25519.js';
import type { SignatureToCheck } from './ed25519.js';
import { readHighestState } from './highest.js';
import { parseReleaseDirName, releaseFiles } from './layout.js';
import type { KeptRelease, VaultStatus } from './types.js';

/** What status never reads (docs/VAULT.md#status); `vault verify` checks each. */
export const NOT_CHECKED_BY_STATUS = ['the live tree', "the live manifest's entries", 'kept releases other than the live one', 'stored bundles'];

/** `code: message` of what stopped a check. */
function problemText(e: unknown): string {
  return isSentinelError(e) ? `${e.code}: ${e.message}` : String(e);
}

/** The version a release id names (`r<version>-<hex>`). */
function versionOfReleaseId(releaseId: string): number {
  return Number(releaseId.slice(1, releaseId.indexOf('-')));
}

// The live release's signed head: signatures against the policy, then the version and vault id of
// those very bytes, the release id against the directory's name. Returns the signers. The release
// id's SHA-512 of the manifest and the Ed25519 check of each signature by a trusted key (each hashes
// the same bytes) run on pool threads side by side (src/vault/ed25519.ts ed25519Prechecked); core's
// pass over the signature block then takes their answers, with the same order and errors as before.
async function checkLiveHead(ctx: VaultCtx, dirName: string): Promise<string[]> {
  const r = await readReleaseBytes(ctx, ctx.layout.release(dirName));
  const signatures = parseSignatures(r.signatureBytes, ctx.limits);
  const { trust } = ctx.config;
  const releaseDigest = sha512Started(r.manifestBytes);
  // Beyond the limit nothing is checked: core refuses the manifest before any signature.
  const ahead = r.manifestBytes.length <= ctx.limits.maxManifestBytes ? signaturesByTrustedKeys(signatures, trust.keys) : [];
  const verify = await ed25519Prechecked(signatureInput(r.manifestBytes), ahead);
  const signers = verifyManifestSignatures(r.manifestBytes, signatures, trust, ctx.limits, { verify });
  const summary = readManifestSummary(r.manifestBytes, ctx.limits);
  const digest = await releaseDigest();
  assertReleaseBinding(ctx, r, releaseIdOf(summary, r.manifestBytes, (bytes) => (bytes === r.manifestBytes ? digest : sha512(bytes))), summary.vaultId);
  return signers;
}

/** Each signature of the block with each trusted key of its key id, as core's pass will ask for them. */
function signaturesByTrustedKeys(signatures: readonly BundleSignature[], keys: readonly PublicKey[]): SignatureToCheck[] {
  const checks: SignatureToCheck[] = [];
  for (const s of signatures) {
    const raw = typeof s.signature === 'string' ? decodeBase64(s.signature) : null;
    if (raw?.length !== 64) continue;
    // A key of another length is left to core, which refuses the policy before any signature.
    for (const k of keys) if (k.key.length === 32 && keyIdOf(k.key) === s.keyId) checks.push({ signature: raw, publicKey: k.key });
  }
  return checks;
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
  const unsealedPaths: string[] = [];
  for (const p of mustBeSealed) {
    const sealed = await isSealed(ctx, p).catch(() => false);
    if (!sealed) unsealedPaths.push(p);
  }
  let deployedAt: string | null = null;
  try {
    deployedAt = (await lstat(layout.current)).mtime.toISOString();
  } catch {
    deployedAt = null;
  }
  const state = await readHighestState(ctx).catch(() => ({ version: 0, releaseId: null }));
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
    deployedAt,
    highestVersion: releases.reduce((m, r) => Math.max(m, r.version), state.version),
    releases,
  };
}
