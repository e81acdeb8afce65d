// Trust policy (docs/SECURITY.md): which keys may sign, how many distinct ones must, and whether a
// verified release may replace the current one (vault binding, rollback, expiry against an injected now).
import nacl from 'tweetnacl';
import { decodeBase64, keyIdOf, toHex, type PublicKey } from './keys.js';
import { parseManifest, type Manifest } from './manifest.js';
import { isStrictSignature, parseSignatures, signatureInput, verifyDetached, type BundleSignature, type Ed25519Verify } from './signature.js';
import { weakPointProblem } from './ed25519-points.js';
import { parseBundleHead } from './bundle.js';
import { DEFAULT_LIMITS, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';

/** k-of-n: at least `threshold` distinct keys of `keys` must sign. */
export interface TrustPolicy {
  keys: PublicKey[];
  threshold: number;
}

/** What verification proved: these exact bytes, this manifest, signed by these trusted key ids. */
export interface VerifiedManifest {
  manifest: Manifest;
  manifestBytes: Uint8Array;
  signers: string[];
  releaseId: string;
}

/** Optional knobs of verification; `verify` replaces the tweetnacl primitive (e.g. by node:crypto's, several times faster on large manifests). */
export interface VerifyOptions {
  verify?: Ed25519Verify;
  /** A faster SHA-512 for the release id (the vault passes node:crypto's); tweetnacl's otherwise. */
  sha512?: (bytes: Uint8Array) => Uint8Array;
}

/** Distinct keys of a keyring by id (the id is recomputed from the key, never taken on trust). */
function distinctKeys(keys: PublicKey[]): Map<string, PublicKey> {
  const byId = new Map<string, PublicKey>();
  for (const k of keys) byId.set(keyIdOf(k.key), k);
  return byId;
}

// A policy no bundle could satisfy (or any bundle could) is a configuration mistake: refuse it up front.
export function assertTrustPolicy(p: TrustPolicy): void {
  if (typeof p !== 'object' || p === null || !Array.isArray(p.keys)) throw new SentinelError('usage', 'trust policy needs a list of keys', { where: 'trust' });
  for (const k of p.keys) {
    if (!(k.key instanceof Uint8Array) || k.key.length !== 32) throw new SentinelError('usage', 'trusted key must be 32 bytes', { where: `trust ${String(k.id)}` });
    const weak = weakPointProblem(k.key);
    if (weak !== null) throw new SentinelError('usage', `trusted key is unusable: ${weak}`, { where: `trust ${String(k.id)}` });
  }
  const n = distinctKeys(p.keys).size;
  if (n === 0) throw new SentinelError('usage', 'trust policy has no keys', { where: 'trust' });
  if (!Number.isSafeInteger(p.threshold) || p.threshold < 1 || p.threshold > n) {
    throw new SentinelError('usage', `threshold must be an integer from 1 to ${n} (the number of distinct trusted keys), got ${String(p.threshold)}`, { where: 'trust.threshold' });
  }
}

// Release id: version (sortable) plus a prefix of SHA-512 of the exact manifest bytes (names this release, not just its number).
export function releaseIdOf(manifest: Pick<Manifest, 'version'>, manifestBytes: Uint8Array, sha512: (bytes: Uint8Array) => Uint8Array = nacl.hash): string {
  return `r${String(manifest.version).padStart(8, '0')}-${toHex(sha512(manifestBytes)).slice(0, 12)}`;
}

/** Runs a (possibly injected) primitive fail-closed: an exception counts as "does not verify"; weak points never reach it. */
function checkSignature(verify: Ed25519Verify, message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!isStrictSignature(signature, publicKey)) return false;
  try {
    return verify(message, signature, publicKey) === true;
  } catch {
    return false;
  }
}

// Signature check before the manifest is even parsed: unknown key ids are ignored, a trusted key's bad signature fails,
// and only distinct trusted keys with a valid signature count towards the threshold.
export function verifySignedManifest(
  manifestBytes: Uint8Array,
  signatures: BundleSignature[],
  policy: TrustPolicy,
  limits: BundleLimits = DEFAULT_LIMITS,
  options: VerifyOptions = {},
): VerifiedManifest {
  const signers = verifyManifestSignatures(manifestBytes, signatures, policy, limits, options);
  const manifest = parseManifest(manifestBytes, limits);
  return { manifest, manifestBytes, signers, releaseId: releaseIdOf(manifest, manifestBytes, options.sha512) };
}

// The signature half of verifySignedManifest, alone: the sorted ids of the trusted keys whose
// signatures over these exact bytes verify, or the same error it throws. The manifest is not parsed
// (`vault status` reads only its head and tail after this: src/core/manifest-summary.ts).
export function verifyManifestSignatures(
  manifestBytes: Uint8Array,
  signatures: BundleSignature[],
  policy: TrustPolicy,
  limits: BundleLimits = DEFAULT_LIMITS,
  options: VerifyOptions = {},
): string[] {
  assertTrustPolicy(policy);
  if (manifestBytes.length > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `manifest of ${manifestBytes.length} bytes exceeds the limit of ${limits.maxManifestBytes}`, { where: 'manifest' });
  }
  const ring = distinctKeys(policy.keys);
  const message = signatureInput(manifestBytes);
  const valid = new Set<string>();
  const unknown = new Set<string>();
  const checked = new Set<string>();
  for (const s of signatures) {
    const key = ring.get(s.keyId);
    if (key === undefined) {
      unknown.add(String(s.keyId));
      continue;
    }
    // The exact same signature again adds nothing; a different one from the same key must verify too (fail closed).
    const seen = `${s.keyId}:${String(s.signature)}`;
    if (checked.has(seen)) continue;
    const raw = typeof s.signature === 'string' ? decodeBase64(s.signature) : null;
    if (raw?.length !== 64 || !checkSignature(options.verify ?? verifyDetached, message, raw, key.key)) {
      throw new SentinelError('bad-signature', `signature by trusted key ${s.keyId} does not verify (bundle altered or signed over other bytes)`, { where: `signature ${s.keyId}` });
    }
    valid.add(s.keyId);
    checked.add(seen);
  }
  const trusted = [...ring.keys()].sort().join(', ');
  if (valid.size === 0) {
    const by = unknown.size > 0 ? `signed only by unknown key(s) ${[...unknown].sort().join(', ')}` : 'no signatures';
    throw new SentinelError('untrusted-key', `no signature from a trusted key: ${by}; trusted: ${trusted}`, { where: 'signatures' });
  }
  if (valid.size < policy.threshold) {
    throw new SentinelError('threshold', `${valid.size} distinct trusted signer(s) (${[...valid].sort().join(', ')}), the policy needs ${policy.threshold}`, { where: 'signatures' });
  }
  return [...valid].sort();
}

// Head of a bundle file to a verified manifest in one step (framing, signature block, signatures, manifest).
export function verifyBundleHead(head: Uint8Array, policy: TrustPolicy, limits: BundleLimits = DEFAULT_LIMITS, options: VerifyOptions = {}): VerifiedManifest & { payloadOffset: number } {
  const parsed = parseBundleHead(head, limits);
  if (!parsed.ok) throw new SentinelError('truncated', `bundle head is incomplete: ${parsed.need} bytes needed, ${head.length} given`, { where: 'bundle head' });
  const signatures = parseSignatures(parsed.signatureBytes, limits);
  return { ...verifySignedManifest(parsed.manifestBytes, signatures, policy, limits, options), payloadOffset: parsed.payloadOffset };
}

// Deploy-time checks: vault binding, rollback (strictly newer), expiry against the injected now.
export function checkDeployable(v: VerifiedManifest, ctx: { vaultId: string; highestVersion: number; now: Date }): void {
  const m = v.manifest;
  if (m.vaultId !== ctx.vaultId) {
    throw new SentinelError('wrong-vault', `bundle is for vault "${m.vaultId}", this vault is "${ctx.vaultId}"`, { where: v.releaseId });
  }
  if (m.version <= ctx.highestVersion) {
    throw new SentinelError('rollback', `version ${m.version} is not newer than the highest version ${ctx.highestVersion} this vault has accepted`, { where: v.releaseId });
  }
  const now = ctx.now.getTime();
  if (Number.isNaN(now)) throw new SentinelError('internal', 'checkDeployable was given an invalid now');
  if (now >= Date.parse(m.expires)) {
    throw new SentinelError('expired', `bundle expired at ${m.expires} (now ${ctx.now.toISOString()})`, { where: v.releaseId });
  }
}

// Why: with trust anchors from outside the vault (`--trust`, the daemon's configuration), a vault
// whose own policy says anything else was changed or set up differently, and a deploy or a later
// verify without the anchors would follow it: each difference is named (docs/SECURITY.md).
export function trustPolicyDifferences(vault: TrustPolicy, anchors: TrustPolicy): string[] {
  const have = distinctKeys(vault.keys);
  const want = distinctKeys(anchors.keys);
  const out: string[] = [];
  const added = [...have.keys()].filter((id) => !want.has(id)).sort();
  const removed = [...want.keys()].filter((id) => !have.has(id)).sort();
  if (added.length > 0) out.push(`trusts key(s) ${added.join(', ')} that the anchors do not`);
  if (removed.length > 0) out.push(`does not trust anchor key(s) ${removed.join(', ')}`);
  if (vault.threshold !== anchors.threshold) out.push(`threshold ${vault.threshold}, the anchors say ${anchors.threshold}`);
  return out;
}
