// Manifest signatures (docs/FORMAT.md): Ed25519 over domain-separated bytes (context + exact
// manifest bytes, never re-serialised JSON), one signature per key, each named by its key id.
import nacl from 'tweetnacl';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, asciiBytes, concatBytes, bytesEqual, decodeBase64, encodeBase64, keyIdOf, type SecretKey } from './keys.js';
import { canonicalJson, utf8Decode, utf8Encode } from './manifest.js';
import { DEFAULT_LIMITS, MAX_SIGNATURES, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';
import { weakPointProblem } from './ed25519-points.js';

/** Domain separation prefix: a signature over a manifest can never be replayed as a signature over anything else. */
export const SIGNATURE_CONTEXT = 'omnimind-sentinel/manifest-signature/v1\0';

/** One signature of the signature block. */
export interface BundleSignature {
  keyId: string;
  signature: string /* base64, 64 bytes */;
}

const CONTEXT_BYTES = asciiBytes(SIGNATURE_CONTEXT);
const KEY_ID_RE = /^[0-9a-f]{16}$/;

// The exact message signed: context bytes followed by the manifest bytes as they travel. When the
// manifest bytes already follow the context in one buffer (the vault reads a kept manifest so, see
// signatureContext), the message is a view of that buffer: a large manifest is not copied.
export function signatureInput(manifestBytes: Uint8Array): Uint8Array {
  const n = CONTEXT_BYTES.length;
  const at = manifestBytes.byteOffset - n;
  if (at >= 0 && bytesEqual(new Uint8Array(manifestBytes.buffer, at, n), CONTEXT_BYTES)) {
    return new Uint8Array(manifestBytes.buffer, at, n + manifestBytes.length);
  }
  return concatBytes(CONTEXT_BYTES, manifestBytes);
}

/** A copy of the context bytes, for a reader that puts a manifest's bytes right after them. */
export function signatureContext(): Uint8Array {
  return CONTEXT_BYTES.slice();
}

// Low-level Ed25519 (RFC 8032 pure Ed25519) over raw bytes, exposed so the RFC vectors can be checked through this layer.
export function signDetached(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== nacl.sign.secretKeyLength) throw new SentinelError('usage', `an Ed25519 secret key is 64 bytes, got ${secretKey.length}`);
  return nacl.sign.detached(message, secretKey);
}

/** An Ed25519 (RFC 8032) verification primitive; an outer layer may inject a native one, tweetnacl is the default. */
export type Ed25519Verify = (message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array) => boolean;

/** The Ed25519 group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const GROUP_ORDER_LE = [
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/** RFC 8032 5.1.7: S (the signature's second half, little-endian) must be below L; tweetnacl does not check it. */
function isCanonicalS(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i]!;
    const l = GROUP_ORDER_LE[i]!;
    if (s !== l) return s < l;
  }
  return false;
}

// The checks every Ed25519 verification in the project makes before the curve equation: lengths, S < L,
// and neither the public key nor R a small-order or non-canonical point (tweetnacl and OpenSSL accept those).
export function isStrictSignature(signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  if (!isCanonicalS(signature)) return false;
  return weakPointProblem(publicKey) === null && weakPointProblem(signature.subarray(0, 32)) === null;
}

// The primitive: true only for a valid signature; wrong lengths are simply invalid, never an exception.
// A non-canonical S (S + L verifies the same equation) is refused, as RFC 8032 and OpenSSL do.
// A small-order or non-canonical key or R is refused too (libsodium's rules, docs/FORMAT.md#55-weak-keys).
export function verifyDetached(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!isStrictSignature(signature, publicKey)) return false;
  return nacl.sign.detached.verify(message, signature, publicKey);
}

// A signer's signature over the manifest bytes; refuses a key whose id or halves do not match.
export function signManifest(manifestBytes: Uint8Array, key: SecretKey): BundleSignature {
  if (key.secretKey.length !== 64 || !bytesEqual(key.secretKey.subarray(32), key.publicKey) || keyIdOf(key.publicKey) !== key.id) {
    throw new SentinelError('usage', 'secret key is inconsistent (id or public half does not match)', { where: key.id });
  }
  return { keyId: key.id, signature: encodeBase64(signDetached(signatureInput(manifestBytes), key.secretKey)) };
}

function compareSignatures(a: BundleSignature, b: BundleSignature): number {
  if (a.keyId !== b.keyId) return a.keyId < b.keyId ? -1 : 1;
  return a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0;
}

function signatureProblems(sigs: unknown): string[] {
  if (!Array.isArray(sigs)) return ['signature block must be a JSON array'];
  const bad: string[] = [];
  if (sigs.length > MAX_SIGNATURES) bad.push(`${sigs.length} signatures exceed the limit of ${MAX_SIGNATURES}`);
  sigs.slice(0, MAX_SIGNATURES).forEach((s, i) => {
    const where = `signatures[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      bad.push(`${where} must be an object`);
      return;
    }
    const rec = s as Record<string, unknown>;
    for (const f of Object.keys(rec)) if (f !== 'keyId' && f !== 'signature') bad.push(`${where}.${f}: unknown field`);
    if (typeof rec.keyId !== 'string' || !KEY_ID_RE.test(rec.keyId)) bad.push(`${where}.keyId must be 16 lowercase hex characters`);
    const raw = typeof rec.signature === 'string' ? decodeBase64(rec.signature) : null;
    if (raw?.length !== 64) bad.push(`${where}.signature must be 64 bytes in canonical base64`);
  });
  return bad;
}

// Signature block: canonical JSON array of {keyId, signature}, sorted by key id (then signature).
export function encodeSignatures(sigs: BundleSignature[]): Uint8Array {
  const bad = signatureProblems(sigs);
  if (bad.length > 0) throw new SentinelError('usage', bad.join('; '), { where: 'signatures' });
  const sorted = sigs.map((s) => ({ keyId: s.keyId, signature: s.signature })).sort(compareSignatures);
  return utf8Encode(canonicalJson(sorted));
}

// Strict reader of the signature block: limit first, then shape, then byte-identity with the re-encoding.
export function parseSignatures(bytes: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): BundleSignature[] {
  if (bytes.length > limits.maxSignatureBlockBytes) {
    throw new SentinelError('too-large', `signature block of ${bytes.length} bytes exceeds the limit of ${limits.maxSignatureBlockBytes}`, { where: 'signatures' });
  }
  let v: unknown;
  try {
    v = JSON.parse(utf8Decode(bytes, 'signatures'));
  } catch (cause) {
    if (cause instanceof SentinelError) throw cause;
    throw new SentinelError('malformed-bundle', 'signature block is not valid JSON', { where: 'signatures', cause });
  }
  const bad = signatureProblems(v);
  if (bad.length > 0) {
    const code = Array.isArray(v) && v.length > MAX_SIGNATURES ? 'too-large' : 'malformed-bundle';
    throw new SentinelError(code, bad.join('; '), { where: 'signatures' });
  }
  const sigs = v as BundleSignature[];
  if (!bytesEqual(encodeSignatures(sigs), bytes)) throw new SentinelError('malformed-bundle', 'signature block is not in canonical form', { where: 'signatures' });
  return sigs;
}
