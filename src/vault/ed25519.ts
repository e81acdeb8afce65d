// Ed25519 verification and SHA-512 through OpenSSL, injected into core's verifySignedManifest by the
// vault: the same check as core's tweetnacl primitive, about a hundred times faster. With the native
// addon OpenSSL is called through its EVP functions (native/src/ed25519.c, digest.c), the very calls
// node:crypto makes, so a process that only checks signatures (`vault status`, `vault verify`) never
// loads node:crypto (about 3 ms of its start); without the addon through node:crypto, loaded on first
// use. Both give the same answers (test/vault/ed25519.test.ts). Core's strict checks come first.
import type * as Crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ed25519Verify } from '../core/signature.js';
import { isStrictSignature, verifyDetached } from '../core/signature.js';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, useSha512ForKeyIds } from '../core/keys.js';
import { loadNative } from '../adapters/native.js';
import { useCurveCheck } from '../core/ed25519-points.js';
import type { CurveCheck } from '../core/ed25519-points.js';

const require = createRequire(import.meta.url);
let nodeCrypto: typeof Crypto | undefined;
const crypto = (): typeof Crypto => (nodeCrypto ??= require('node:crypto') as typeof Crypto);

// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410) followed by the 32 raw key bytes.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keyCache = new Map<string, KeyObject>();

function keyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('hex');
  let k = keyCache.get(id);
  if (k === undefined) {
    k = crypto().createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyCache.size > 256) keyCache.clear();
    keyCache.set(id, k);
  }
  return k;
}

/** OpenSSL's Ed25519 check through node:crypto alone, without the strict checks: the addon's fallback (and its reference in the tests). */
export function nodeCryptoEd25519(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  // A longer key would still load: DER's parser takes the first 32 bytes and ignores the rest.
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  let key: KeyObject;
  try {
    key = keyObject(publicKey);
  } catch {
    // A key node:crypto cannot load (it loads any 32 bytes): tweetnacl answers.
    return verifyDetached(message, signature, publicKey);
  }
  return crypto().verify(null, message, key, signature);
}

// Why: signature checks sit on every deploy, verify and heal.
export const ed25519Verify: Ed25519Verify = (message, signature, publicKey) => {
  // OpenSSL checks S < L but accepts small-order and non-canonical keys and R: core's strict checks come first.
  if (!isStrictSignature(signature, publicKey)) return false;
  const addon = loadNative();
  // The addon throws only when OpenSSL cannot set the check up; core's checkSignature counts that as not valid.
  if (typeof addon?.ed25519Verify === 'function') return addon.ed25519Verify(message, signature, publicKey);
  return nodeCryptoEd25519(message, signature, publicKey);
};

// Why: the release id hashes the whole manifest (megabytes for large trees); OpenSSL's SHA-512 is far faster than JS.
export const sha512 = (bytes: Uint8Array): Uint8Array => {
  const addon = loadNative();
  if (typeof addon?.sha512 === 'function') return addon.sha512(bytes);
  return crypto().createHash('sha512').update(bytes).digest();
};

// Why: status checks a manifest's signatures (OpenSSL hashes it inside each check) and its release
// id, SHA-512 of the same bytes: with the addon that hash runs on a pool thread meanwhile
// (native/src/digest.c). Without the addon, or if its hash fails, it is taken here when asked for.
// The bytes must not change until the answer is taken; nothing is ever rejected unasked.
export function sha512Started(bytes: Uint8Array): () => Promise<Uint8Array> {
  const addon = loadNative();
  let pending: Promise<Uint8Array | null> = Promise.resolve(null);
  if (typeof addon?.sha512Async === 'function') {
    try {
      pending = addon.sha512Async(bytes).then(
        (d) => new Uint8Array(d),
        () => null,
      );
    } catch {
      // not started: hashed here below
    }
  }
  return async () => (await pending) ?? sha512(bytes);
}
// Key ids too (core/keys.ts): the same bytes hashed, natively.
useSha512ForKeyIds(sha512);
// And a public key's decoding test (core/ed25519-points.ts) through OpenSSL's big numbers: the same
// arithmetic, about a tenth of the time; without the addon core's BigInt arithmetic answers.
export const opensslCurveCheck: CurveCheck = (key) => {
  const addon = loadNative();
  return typeof addon?.ed25519IsPoint === 'function' ? addon.ed25519IsPoint(key) : null;
};
useCurveCheck(opensslCurveCheck);
