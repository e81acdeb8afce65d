// Bundle framing (docs/FORMAT.md): one streamable file whose signed manifest comes first, with
// every declared length checked against the limits before a byte of it is read.
import { asciiBytes, bytesEqual } from './keys.js';
import { DEFAULT_LIMITS, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';

/** First 8 bytes of every bundle (format version 1). */
export const BUNDLE_MAGIC: Uint8Array = asciiBytes('OMSBNDL1');

/** Bytes before the manifest: magic + u32 manifest length. */
export const HEAD_FIXED_BYTES = BUNDLE_MAGIC.length + 4;

function u32be(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SentinelError('too-large', `length ${n} does not fit the u32 length field`);
  return new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function readU32be(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}

// Head = magic, u32 BE manifest length, manifest, u32 BE signature block length, signature block; the payload follows.
export function encodeBundleHead(manifestBytes: Uint8Array, signatureBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEAD_FIXED_BYTES + manifestBytes.length + 4 + signatureBytes.length);
  out.set(BUNDLE_MAGIC, 0);
  out.set(u32be(manifestBytes.length), 8);
  out.set(manifestBytes, 12);
  out.set(u32be(signatureBytes.length), 12 + manifestBytes.length);
  out.set(signatureBytes, 16 + manifestBytes.length);
  return out;
}

/** `need` is the total number of bytes, from the start of the bundle, that the next call must be given. */
export type HeadParse = { ok: true; manifestBytes: Uint8Array; signatureBytes: Uint8Array; payloadOffset: number } | { ok: false; need: number };

// Incremental head reader: bad magic as soon as it shows, `too-large` before reading an oversized block, else asks for more.
export function parseBundleHead(prefix: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): HeadParse {
  const m = Math.min(prefix.length, BUNDLE_MAGIC.length);
  if (!bytesEqual(prefix.subarray(0, m), BUNDLE_MAGIC.subarray(0, m))) {
    throw new SentinelError('malformed-bundle', 'not a sentinel bundle (bad magic; expected "OMSBNDL1")', { where: 'bundle head' });
  }
  if (prefix.length < HEAD_FIXED_BYTES) return { ok: false, need: HEAD_FIXED_BYTES };
  const manifestLength = readU32be(prefix, 8);
  if (manifestLength > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `declared manifest length ${manifestLength} exceeds the limit of ${limits.maxManifestBytes}`, { where: 'bundle head' });
  }
  if (manifestLength === 0) throw new SentinelError('malformed-bundle', 'declared manifest length is 0', { where: 'bundle head' });
  const sigLengthAt = HEAD_FIXED_BYTES + manifestLength;
  if (prefix.length < sigLengthAt + 4) return { ok: false, need: sigLengthAt + 4 };
  const signatureLength = readU32be(prefix, sigLengthAt);
  if (signatureLength > limits.maxSignatureBlockBytes) {
    throw new SentinelError('too-large', `declared signature block length ${signatureLength} exceeds the limit of ${limits.maxSignatureBlockBytes}`, { where: 'bundle head' });
  }
  const payloadOffset = sigLengthAt + 4 + signatureLength;
  if (prefix.length < payloadOffset) return { ok: false, need: payloadOffset };
  return {
    ok: true,
    manifestBytes: prefix.slice(HEAD_FIXED_BYTES, sigLengthAt),
    signatureBytes: prefix.slice(sigLengthAt + 4, payloadOffset),
    payloadOffset,
  };
}
