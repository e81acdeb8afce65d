// The vault's OpenSSL-backed Ed25519 verifier must agree with core's tweetnacl primitive on valid
// signatures and on every kind of bad one (changed message, changed signature, other key), and its SHA-512 (release ids) with tweetnacl's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { signDetached, verifyDetached } from '../src/core/signature.js';
import { keyPairFromSeed } from '../src/core/keys.js';
import nacl from 'tweetnacl';
import { ed25519Verify, sha512 } from '../src/vault/ed25519.js';

test('ed25519Verify agrees with tweetnacl on good and bad signatures', () => {
  for (let i = 0; i < 50; i++) {
    const kp = keyPairFromSeed(new Uint8Array(randomBytes(32)));
    const other = keyPairFromSeed(new Uint8Array(randomBytes(32)));
    const msg = new Uint8Array(randomBytes(1 + (i * 37) % 500));
    const sig = signDetached(msg, kp.secret.secretKey);
    const badMsg = Uint8Array.from(msg);
    badMsg[i % badMsg.length] = (badMsg[i % badMsg.length] ?? 0) ^ 1;
    const badSig = Uint8Array.from(sig);
    badSig[i % 64] = (badSig[i % 64] ?? 0) ^ 0x80;
    const cases: [Uint8Array, Uint8Array, Uint8Array, boolean][] = [
      [msg, sig, kp.public.key, true],
      [badMsg, sig, kp.public.key, false],
      [msg, badSig, kp.public.key, false],
      [msg, sig, other.public.key, false],
      [msg, sig.subarray(0, 63), kp.public.key, false],
    ];
    for (const [m, s, k, expected] of cases) {
      assert.equal(verifyDetached(m, s, k), expected);
      assert.equal(ed25519Verify(m, s, k), expected);
    }
  }
});

test('the injected SHA-512 gives the same release id as tweetnacl', () => {
  const bytes = new TextEncoder().encode('{"format":"omnimind-sentinel/manifest/v1"}');
  assert.deepEqual(Buffer.from(sha512(bytes)), Buffer.from(nacl.hash(bytes)));
});
