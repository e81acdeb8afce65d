// The live release's signed manifest for `vault verify` (docs/VAULT.md#verify-fail-closed-invariants-5-and-6):
// its signatures against the policy (the release id's SHA-512 on a pool thread meanwhile, as status
// takes it), then, where the tree reading can, the intact answer compared in the addon straight from
// the manifest's bytes and the tree pass's records, no entry parsed (native/src/verify-tree.c); for
// anything else the manifest parsed and checked as every kept release is. The same checks in the
// same order with the same errors as verifyKeptRelease: signatures, the manifest's rules, the
// release id and vault binding.
import { parseManifest } from '../core/manifest.js';
import type { Manifest } from '../core/manifest.js';
import { parseSignatures } from '../core/signature.js';
import type { TreeCheck } from '../core/tree-check.js';
import { releaseIdOf, verifyManifestSignatures } from '../core/trust.js';
import type { TrustPolicy, VerifiedManifest } from '../core/trust.js';
import type { TreeReading } from '../adapters/tree-inspector.js';
import { assertReleaseBinding } from './context.js';
import type { ReleaseBytes, VaultCtx } from './context.js';
import { ed25519Verify, sha512, sha512Started } from './ed25519.js';

/** The verified live manifest, and the tree's check when the addon answered it (else null: check the tree against `v.manifest`). */
export interface LiveVerified {
  v: VerifiedManifest;
  version: number;
  tree: TreeCheck | null;
}

// Why: `vault verify` of 10,000 files builds no entry object when the tree is intact: the
// manifest's entries are parsed only when something asks for them (a stored bundle's check, a
// difference found). `quick`: whether the addon's answer may be used (no progress is drawn).
export async function verifyLiveRelease(ctx: VaultCtx, r: ReleaseBytes, policy: TrustPolicy, reading: TreeReading, quick: boolean): Promise<LiveVerified> {
  const bytes = r.manifestBytes;
  const signatures = parseSignatures(r.signatureBytes, ctx.limits);
  const releaseDigest = sha512Started(bytes);
  const signers = verifyManifestSignatures(bytes, signatures, policy, ctx.limits, { verify: ed25519Verify });
  const found = quick && reading.checkSigned !== undefined ? await reading.checkSigned(bytes, ctx.limits) : null;
  let manifest: Manifest | undefined = found === null ? parseManifest(bytes, ctx.limits) : undefined;
  const top = found ?? manifest!;
  const digest = await releaseDigest();
  const releaseId = releaseIdOf(top, bytes, (b) => (b === bytes ? digest : sha512(b)));
  assertReleaseBinding(ctx, r, releaseId, top.vaultId);
  const v: VerifiedManifest = {
    // Parsed on first use where the addon answered (it accepted only what the one-pass reader accepts).
    get manifest(): Manifest {
      return (manifest ??= parseManifest(bytes, ctx.limits));
    },
    manifestBytes: bytes,
    signers,
    releaseId,
  };
  return { v, version: top.version, tree: found?.check ?? null };
}
