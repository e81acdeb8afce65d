// The addon's Ed25519 check (native/src/ed25519.c, OpenSSL's EVP) must give node:crypto's answer
// (the same OpenSSL, the fallback without the addon) on every kind of input: valid, a changed
// message, signature or key, another key, a non-canonical S, small-order and non-canonical keys and
// R, keys that are no point, wrong lengths. Its SHA-256 and SHA-512 must be
// node:crypto's. And the vault's wrapper must keep core's strict checks in front of it. Its point
// decoding test (a public key as it is read) must answer as core's BigInt arithmetic, on any encoding.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadNative } from '../../src/adapters/native.js';
import type { NativeAddon } from '../../src/adapters/native.js';
import { curveProblemOverBigInt, publicKeyProblem, useCurveCheck, weakPointProblem } from '../../src/core/ed25519-points.js';
import { keyPairFromSeed } from '../../src/core/keys.js';
import { signDetached, verifyDetached } from '../../src/core/signature.js';
import { ed25519Verify, nodeCryptoEd25519, opensslCurveCheck } from '../../src/vault/ed25519.js';
import { coreFixture, hexToBytes } from '../helpers/core-factory.js';
import { needs } from '../helpers/env.js';

type Ed25519Addon = Required<Pick<NativeAddon, 'ed25519Verify' | 'ed25519IsPoint' | 'sha256' | 'sha512'>>;

function addonWithEd25519(t: Parameters<typeof needs>[0]): Ed25519Addon | null {
  const addon = loadNative();
  const built = typeof addon?.ed25519Verify === 'function' && typeof addon.ed25519IsPoint === 'function' && typeof addon.sha256 === 'function';
  if (needs(t, built, 'native addon with ed25519Verify and ed25519IsPoint (npm ci builds native/)')) return null;
  return addon as Ed25519Addon;
}

/** L, the order of the Ed25519 base point, little-endian. */
const L = hexToBytes('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010');

function plusL(sig: Uint8Array): Uint8Array {
  const out = Uint8Array.from(sig);
  let carry = 0;
  for (let j = 0; j < 32; j++) {
    const v = out[32 + j]! + L[j]! + carry;
    out[32 + j] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  if (out.length > 0) out[(bit >> 3) % out.length]! ^= 1 << (bit & 7);
  return out;
}

/** The addon's answer against node:crypto's (no strict checks on either side). */
function agrees(addon: Ed25519Addon, m: Uint8Array, s: Uint8Array, k: Uint8Array, what: string): boolean {
  const want = nodeCryptoEd25519(m, s, k);
  assert.equal(addon.ed25519Verify(m, s, k), want, `${what}: ed25519Verify`);
  return want;
}

test('the addon\'s Ed25519 check is node:crypto\'s on valid, changed, other-key, S + L and wrong-length inputs (property)', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 600 }), fc.nat(), (seed, otherSeed, msg, bit) => {
      const kp = keyPairFromSeed(seed);
      const other = keyPairFromSeed(otherSeed);
      const sig = signDetached(msg, kp.secret.secretKey);
      const key = kp.public.key;
      assert.equal(agrees(addon, msg, sig, key, 'valid'), true);
      assert.equal(agrees(addon, flipBit(msg, bit), sig, key, 'changed message'), msg.length === 0);
      assert.equal(agrees(addon, msg, flipBit(sig, bit), key, 'changed signature'), false);
      agrees(addon, msg, sig, flipBit(key, bit), 'changed key');
      assert.equal(agrees(addon, msg, sig, other.public.key, 'other key'), bytesEq(seed, otherSeed));
      assert.equal(agrees(addon, msg, plusL(sig), key, 'non-canonical S (S + L)'), false);
      for (const s of [sig.subarray(0, 63), new Uint8Array([...sig, 0]), new Uint8Array(0)]) assert.equal(agrees(addon, msg, s, key, `signature of ${s.length} bytes`), false);
      for (const k of [key.subarray(0, 31), new Uint8Array([...key, 0]), new Uint8Array(0)]) assert.equal(agrees(addon, msg, sig, k, `key of ${k.length} bytes`), false);
    }),
    { numRuns: 60 },
  );
});

test('node:crypto alone loads a 33-byte key by its first 32 bytes; the fallback refuses wrong lengths as the addon does', () => {
  const kp = keyPairFromSeed(new Uint8Array(randomBytes(32)));
  const m = new Uint8Array([9, 9, 9]);
  const sig = signDetached(m, kp.secret.secretKey);
  const longer = new Uint8Array([...kp.public.key, 0]);
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), longer]);
  assert.equal(cryptoVerify(null, m, createPublicKey({ key: der, format: 'der', type: 'spki' }), sig), true, 'why the fallback checks lengths itself');
  assert.equal(nodeCryptoEd25519(m, sig, longer), false);
  assert.equal(nodeCryptoEd25519(m, new Uint8Array([...sig, 0]), kp.public.key), false);
  assert.equal(nodeCryptoEd25519(m, sig, kp.public.key), true);
});

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

test('the addon\'s Ed25519 check is node:crypto\'s on random signatures and keys (mostly no point) (property)', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (m, s, k) => {
      assert.equal(agrees(addon, m, s, k, 'random'), false);
    }),
    { numRuns: 200 },
  );
});

test('the addon\'s Ed25519 check is node:crypto\'s on the weak-point vectors, and the vault\'s wrapper refuses what core refuses', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  const weak = JSON.parse(new TextDecoder().decode(coreFixture('ed25519-weak-points.json'))) as {
    speccheck: { cases: { case: number; pubKey: string; signature: string; message: string; libsodiumAccepts: boolean }[] };
    cctv: { vectors: { number: number; key: string; sig: string; msg: string; flags: string[] }[] };
  };
  const vectors = [
    ...weak.speccheck.cases.map((c) => ({ what: `speccheck case ${c.case}`, m: hexToBytes(c.message), s: hexToBytes(c.signature), k: hexToBytes(c.pubKey) })),
    ...weak.cctv.vectors.map((v) => ({ what: `CCTV vector ${v.number} (${v.flags.join(', ')})`, m: new TextEncoder().encode(v.msg), s: hexToBytes(v.sig), k: hexToBytes(v.key) })),
  ];
  let openSslAccepted = 0;
  for (const v of vectors) {
    if (agrees(addon, v.m, v.s, v.k, v.what)) openSslAccepted++;
    // The wrapper: exactly core's strict primitive (tweetnacl behind the same strict checks).
    const strict = verifyDetached(v.m, v.s, v.k);
    assert.equal(ed25519Verify(v.m, v.s, v.k), strict, `${v.what}: ed25519Verify`);
  }
  // Small-order keys and R that OpenSSL accepts are among the vectors: the strict checks are what refuse them.
  const strictAccepted = vectors.filter((v) => verifyDetached(v.m, v.s, v.k)).length;
  assert.ok(openSslAccepted > strictAccepted, `OpenSSL alone accepted ${openSslAccepted}, the strict checks ${strictAccepted}`);
});

test('the addon\'s Ed25519 calls refuse anything but Uint8Arrays with a TypeError', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  const kp = keyPairFromSeed(new Uint8Array(32));
  const m = new Uint8Array([1, 2, 3]);
  const s = signDetached(m, kp.secret.secretKey);
  const k = kp.public.key;
  const bad = ['text', new Uint16Array(32), undefined, null, 7, new ArrayBuffer(64)] as unknown as Uint8Array[];
  for (const b of bad) {
    for (const args of [[b, s, k], [m, b, k], [m, s, b]] as [Uint8Array, Uint8Array, Uint8Array][]) {
      assert.throws(() => addon.ed25519Verify(...args), { name: 'TypeError' });
    }
  }
  assert.throws(() => (addon.ed25519Verify as unknown as (a: Uint8Array) => boolean)(m), { name: 'TypeError' });
  // A Buffer and a view at an offset are Uint8Arrays.
  const pool = new Uint8Array(200);
  pool.set(m, 17);
  assert.equal(addon.ed25519Verify(Buffer.from(m), Buffer.from(s), Buffer.from(k)), true);
  assert.equal(addon.ed25519Verify(pool.subarray(17, 20), s, k), true);
});

test('the addon\'s SHA-256 and SHA-512 are node:crypto\'s for any length and a view at an offset; anything but a Uint8Array is a TypeError', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  const pool = new Uint8Array(randomBytes(800_000));
  for (const len of [0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 4096, 700_001]) {
    for (const offset of [0, 5]) {
      const bytes = pool.subarray(offset, offset + len);
      assert.deepEqual(addon.sha256(bytes), createHash('sha256').update(bytes).digest(), `sha256 of ${len} bytes at ${offset}`);
      assert.deepEqual(addon.sha512(bytes), createHash('sha512').update(bytes).digest(), `sha512 of ${len} bytes at ${offset}`);
    }
  }
  for (const b of ['text', new Uint32Array(4), undefined, new ArrayBuffer(8)] as unknown as Uint8Array[]) {
    assert.throws(() => addon.sha256(b), { name: 'TypeError' });
    assert.throws(() => addon.sha512(b), { name: 'TypeError' });
  }
});

/** An encoding of y (little-endian, bit 255 the sign of x). */
function encodingOf(y: bigint, sign: boolean): Uint8Array {
  const out = new Uint8Array(32);
  let v = y;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (sign) out[31]! |= 0x80;
  return out;
}

test('the addon\'s point decoding test answers as core\'s BigInt arithmetic on random, edge and real encodings; the vault injects it into core', (t) => {
  const addon = addonWithEd25519(t);
  if (addon === null) return;
  const same = (k: Uint8Array, what: string): boolean => {
    const want = curveProblemOverBigInt(k) === null;
    assert.equal(addon.ed25519IsPoint(k), want, `${what}: ${Buffer.from(k).toString('hex')}`);
    // publicKeyProblem as a key is read, with the check src/vault/ed25519.ts injects (imported above).
    assert.equal(publicKeyProblem(k), weakPointProblem(k) ?? (want ? null : 'not a point on the curve'), `${what}: publicKeyProblem`);
    return want;
  };
  let points = 0;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (k) => {
      if (same(k, 'random')) points++;
    }),
    { numRuns: 400 },
  );
  // About half of all y decode: both answers were met.
  assert.ok(points > 100 && points < 300, `${points} of 400 random encodings decoded`);
  const p = (1n << 255n) - 19n;
  for (const y of [0n, 1n, 2n, 9n, p - 2n, p - 1n, p, p + 1n, (1n << 255n) - 1n]) for (const sign of [false, true]) same(encodingOf(y, sign), `y = ${y}, sign ${sign}`);
  for (let i = 0; i < 40; i++) {
    const key = keyPairFromSeed(new Uint8Array(randomBytes(32))).public.key;
    assert.equal(same(key, 'a real public key'), true);
  }
  const weak = JSON.parse(new TextDecoder().decode(coreFixture('ed25519-weak-points.json'))) as { speccheck: { cases: { pubKey: string }[] }; cctv: { vectors: { key: string }[] } };
  for (const k of [...weak.speccheck.cases.map((c) => c.pubKey), ...weak.cctv.vectors.map((v) => v.key)]) same(hexToBytes(k), 'a weak-point vector\'s key');
  for (const b of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'text', new Uint16Array(16), undefined] as unknown as Uint8Array[]) {
    assert.throws(() => addon.ed25519IsPoint(b), { name: 'TypeError' });
  }
});

test('core takes the injected point test\'s answer, and its BigInt arithmetic\'s when the injected one cannot answer or throws', () => {
  const freshKey = (): Uint8Array => keyPairFromSeed(new Uint8Array(randomBytes(32))).public.key;
  try {
    useCurveCheck(() => false);
    assert.equal(publicKeyProblem(freshKey()), 'not a point on the curve', 'the injected answer is taken');
    useCurveCheck(() => null);
    assert.equal(publicKeyProblem(freshKey()), null, 'no answer: BigInt decides');
    useCurveCheck(() => {
      throw new Error('no memory');
    });
    assert.equal(publicKeyProblem(freshKey()), null, 'a throw: BigInt decides');
  } finally {
    useCurveCheck(opensslCurveCheck);
  }
});
