// Ed25519 verification through Node's crypto (OpenSSL): the same check as core's tweetnacl
// primitive, about a hundred times faster, injected into core's verifySignedManifest by the vault.
import { createHash, createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Ed25519Verify } from '../core/signature.js';
import { isStrictSignature, verifyDetached } from '../core/signature.js';
import { useSha512ForKeyIds } from '../core/keys.js';
import { loadNative } from '../adapters/native.js';

// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410) followed by the 32 raw key bytes.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keyCache = new Map<string, KeyObject>();

function keyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('hex');
  let k = keyCache.get(id);
  if (k === undefined) {
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyCache.size > 256) keyCache.clear();
    keyCache.set(id, k);
  }
  return k;
}

// Why: signature checks sit on every deploy, verify and heal; a key OpenSSL cannot load falls back to tweetnacl.
export const ed25519Verify: Ed25519Verify = (message, signature, publicKey) => {
  // OpenSSL checks S < L but accepts small-order and non-canonical keys and R: core's strict checks come first.
  if (!isStrictSignature(signature, publicKey)) return false;
  let key: KeyObject;
  try {
    key = keyObject(publicKey);
  } catch {
    return verifyDetached(message, signature, publicKey);
  }
  return verify(null, message, key, signature);
};

// Why: the release id hashes the whole manifest (megabytes for large trees); OpenSSL's SHA-512 is far faster than JS.
export const sha512 = (bytes: Uint8Array): Uint8Array => createHash('sha512').update(bytes).digest();

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
