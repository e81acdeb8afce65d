// The vault's OpenSSL-backed Ed25519 verifier must agree with core's tweetnacl primitive on valid
// signatures and on every kind of bad one (changed message, changed signature, other key), and its SHA-512 (release ids) with tweetnacl's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNative } from '../../src/adapters/native.js';
import { needs } from '../helpers/env.js';
import { signDetached, verifyDetached } from '../../src/core/signature.js';
import { keyIdOf, keyPairFromSeed, useSha512ForKeyIds } from '../../src/core/keys.js';
import nacl from 'tweetnacl';
import { ed25519Verify, sha512, sha512Started } from '../../src/vault/ed25519.js';
import { coreFixture, hexToBytes } from '../helpers/core-factory.js';

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

test('a non-canonical S (S + L, RFC 8032 5.1.7) is refused by both primitives', () => {
  // L, the order of the Ed25519 base point, little-endian.
  const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');
  for (let i = 0; i < 20; i++) {
    const kp = keyPairFromSeed(new Uint8Array(randomBytes(32)));
    const msg = new Uint8Array(randomBytes(40));
    const sig = signDetached(msg, kp.secret.secretKey);
    const malleated = Uint8Array.from(sig);
    let carry = 0;
    for (let j = 0; j < 32; j++) {
      const v = (malleated[32 + j] ?? 0) + (L[j] ?? 0) + carry;
      malleated[32 + j] = v & 0xff;
      carry = v >> 8;
    }
    assert.equal(carry, 0, 'S + L fits 256 bits (S < L < 2^253)');
    assert.equal(verifyDetached(msg, sig, kp.public.key), true);
    assert.equal(verifyDetached(msg, malleated, kp.public.key), false, 'core primitive accepted S + L');
    assert.equal(ed25519Verify(msg, malleated, kp.public.key), false);
  }
});

test('the vault primitive refuses weak points like the core one: "Taming the many EdDSAs" and CCTV vectors', () => {
  const weak = JSON.parse(new TextDecoder().decode(coreFixture('ed25519-weak-points.json'))) as {
    speccheck: { cases: { case: number; pubKey: string; signature: string; message: string; libsodiumAccepts: boolean }[] };
    cctv: { vectors: { number: number; key: string; sig: string; msg: string; flags: string[] }[] };
  };
  for (const c of weak.speccheck.cases) {
    assert.equal(ed25519Verify(hexToBytes(c.message), hexToBytes(c.signature), hexToBytes(c.pubKey)), c.libsodiumAccepts, `speccheck case ${c.case}`);
  }
  const refused = ['low_order_A', 'low_order_R', 'non_canonical_A', 'non_canonical_R', 'low_order_residue'];
  for (const v of weak.cctv.vectors) {
    const expected = !v.flags.some((f) => refused.includes(f));
    assert.equal(ed25519Verify(new TextEncoder().encode(v.msg), hexToBytes(v.sig), hexToBytes(v.key)), expected, `CCTV vector ${v.number} (${v.flags.join(', ')})`);
  }
});

test('key ids through the native SHA-512 the vault installs are tweetnacl\'s', () => {
  for (let i = 0; i < 20; i++) {
    const key = keyPairFromSeed(new Uint8Array(randomBytes(32))).public.key;
    const native = keyIdOf(key);
    useSha512ForKeyIds(nacl.hash);
    try {
      assert.equal(keyIdOf(key), native);
    } finally {
      useSha512ForKeyIds(sha512);
    }
  }
});

test('the addon\'s SHA-512 on a pool thread is node:crypto\'s, for any length and a view at an offset', async (t) => {
  const addon = loadNative();
  if (needs(t, typeof addon?.sha512Async === 'function', 'native addon (npm ci builds native/)')) return;
  const pool = new Uint8Array(randomBytes(1_400_000));
  for (const len of [0, 1, 111, 112, 127, 128, 129, 4096, 1_300_001]) {
    for (const offset of [0, 3]) {
      const bytes = pool.subarray(offset, offset + len);
      const want = createHash('sha512').update(bytes).digest();
      assert.deepEqual(Buffer.from(await addon!.sha512Async!(bytes)), want, `${len} bytes at offset ${offset}`);
      assert.deepEqual(Buffer.from(await sha512Started(bytes)()), want, `sha512Started, ${len} bytes at offset ${offset}`);
    }
  }
  // Several at once, each its own answer.
  const views = [pool.subarray(0, 1000), pool.subarray(1000, 500_000), pool.subarray(5, 6)];
  const got = await Promise.all(views.map((v) => addon!.sha512Async!(v)));
  got.forEach((d, i) => assert.deepEqual(Buffer.from(d), Buffer.from(sha512(views[i]!)), `view ${i}`));
  assert.throws(() => addon!.sha512Async!('text' as unknown as Uint8Array), { name: 'TypeError' });
  assert.throws(() => addon!.sha512Async!(new Uint16Array(4) as unknown as Uint8Array), { name: 'TypeError' });
});

test('sha512Async hashes the bytes it was given even when their ArrayBuffer is transferred and collected before it settles', async (t) => {
  const addon = loadNative();
  if (needs(t, typeof addon?.sha512Async === 'function', 'native addon (npm ci builds native/)')) return;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // Above glibc's mmap threshold: the store's pages are unmapped when it is freed. About 0.15 s of hashing.
  const bytes = new Uint8Array(64 * 1024 * 1024).fill(7);
  const want = createHash('sha512').update(bytes).digest();
  const pending = addon!.sha512Async!(bytes);
  let moved: ArrayBuffer | null = structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  assert.equal(bytes.length, 0, 'the array is detached');
  assert.equal(moved.byteLength, 64 * 1024 * 1024);
  moved = null;
  gc();
  // Other memory where the store was.
  const junk = Array.from({ length: 4 }, (_, i) => new Uint8Array(32 * 1024 * 1024).fill(i + 1));
  assert.deepEqual(await pending, want);
  assert.equal(junk.length, 4);
});
