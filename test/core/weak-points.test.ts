// Weak Ed25519 points (docs/FORMAT.md, section 5.5): small-order and non-canonical public keys and R
// are refused everywhere a key is read or a signature checked, as libsodium does. Vectors are the
// published ones: the complete list of low-order encodings (C2SP/CCTV), the 12 cases of "Taming the
// many EdDSAs" (ed25519-speccheck, with libsodium's expected results) and CCTV's edge-case vectors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertTrustPolicy,
  encodeBase64,
  keyIdOf,
  parsePublicKey,
  signatureInput,
  verifyDetached,
  verifySignedManifest,
} from '../../src/core/index.js';
import { publicKeyProblem, weakPointProblem } from '../../src/core/ed25519-points.js';
import { coreFixture, makeManifest, hexToBytes, testKey, throwsCode } from '../helpers/core-factory.js';
import { encodeManifest } from '../../src/core/manifest.js';

interface WeakFixture {
  lowOrderEncodings: { hex: string[] };
  speccheck: { cases: { case: number; pubKey: string; signature: string; message: string; libsodiumAccepts: boolean }[] };
  cctv: { vectors: { number: number; key: string; sig: string; msg: string; flags: string[] }[] };
}
const weak = JSON.parse(new TextDecoder().decode(coreFixture('ed25519-weak-points.json'))) as WeakFixture;

/** Flags of a CCTV vector that a libsodium-like, cofactorless verifier must refuse. */
const REFUSED_FLAGS = ['low_order_A', 'low_order_R', 'non_canonical_A', 'non_canonical_R', 'low_order_residue'];

test('the fixture holds the 14 low-order encodings, the 12 speccheck cases and CCTV vectors of every flag kind', () => {
  assert.equal(new Set(weak.lowOrderEncodings.hex).size, 14);
  assert.deepEqual(weak.speccheck.cases.map((c) => c.case), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.ok(weak.cctv.vectors.length >= 60);
  assert.ok(weak.cctv.vectors.some((v) => v.flags.length === 0), 'one plain valid vector');
});

test('every low-order encoding is a weak point, as a key and as R', () => {
  for (const hex of weak.lowOrderEncodings.hex) {
    const p = hexToBytes(hex);
    assert.notEqual(weakPointProblem(p), null, hex);
    assert.notEqual(publicKeyProblem(p), null, hex);
  }
  // A real public key is none of them.
  const k = testKey('weak-points').public.key;
  assert.equal(weakPointProblem(k), null);
  assert.equal(publicKeyProblem(k), null);
});

test('non-canonical encodings (y >= p) are refused; a y that is no curve point is refused as a key', () => {
  // p + 2 .. 2^255 - 1 (low byte 0xef .. 0xff), both signs.
  for (let low = 0xef; low <= 0xff; low++) {
    for (const top of [0x7f, 0xff]) {
      const enc = new Uint8Array(32).fill(0xff);
      enc[0] = low;
      enc[31] = top;
      assert.equal(weakPointProblem(enc), 'non-canonical encoding (y >= 2^255-19)');
    }
  }
  // y = 2 is not on the curve (x^2 would not be a square).
  const two = new Uint8Array(32);
  two[0] = 2;
  assert.equal(weakPointProblem(two), null);
  assert.equal(publicKeyProblem(two), 'not a point on the curve');
});

test('"Taming the many EdDSAs": the core primitive accepts exactly what libsodium accepts', () => {
  for (const c of weak.speccheck.cases) {
    const got = verifyDetached(hexToBytes(c.message), hexToBytes(c.signature), hexToBytes(c.pubKey));
    assert.equal(got, c.libsodiumAccepts, `case ${c.case}`);
  }
});

test('CCTV vectors: the core primitive refuses every low-order or non-canonical A or R', () => {
  for (const v of weak.cctv.vectors) {
    const expected = !v.flags.some((f) => REFUSED_FLAGS.includes(f));
    const got = verifyDetached(new TextEncoder().encode(v.msg), hexToBytes(v.sig), hexToBytes(v.key));
    assert.equal(got, expected, `vector ${v.number} (${v.flags.join(', ') || 'no flags'})`);
  }
});

test('a weak key is refused when read, in every key text form, and in a trust policy', () => {
  for (const hex of [...weak.lowOrderEncodings.hex, 'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f']) {
    const key = hexToBytes(hex);
    const b64 = encodeBase64(key);
    const id = keyIdOf(key);
    const ssh = encodeBase64(new Uint8Array([0, 0, 0, 11, ...new TextEncoder().encode('ssh-ed25519'), 0, 0, 0, 32, ...key]));
    const pem = `-----BEGIN PUBLIC KEY-----\n${encodeBase64(new Uint8Array([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, ...key]))}\n-----END PUBLIC KEY-----\n`;
    for (const text of [`${b64}\n`, `omnimind-sentinel-ed25519-public-v1 ${id} ${b64}\n`, `ssh-ed25519 ${ssh} x\n`, pem]) {
      throwsCode(() => parsePublicKey(text, 'weak.pub'), 'usage', 'weak.pub');
    }
    throwsCode(() => assertTrustPolicy({ keys: [{ id, key }], threshold: 1 }), 'usage');
  }
});

test('universal forgery with the identity key: R = identity, S = 0 verifies for no message', () => {
  const identity = hexToBytes('0100000000000000000000000000000000000000000000000000000000000000');
  const forged = new Uint8Array(64);
  forged[0] = 1;
  const manifestBytes = encodeManifest(makeManifest({ version: 1 }));
  assert.equal(verifyDetached(signatureInput(manifestBytes), forged, identity), false);
  // And through the policy check, with the weak key smuggled into a policy (e.g. a rewritten vault.json).
  const policy = { keys: [{ id: keyIdOf(identity), key: identity }], threshold: 1 };
  throwsCode(() => verifySignedManifest(manifestBytes, [{ keyId: keyIdOf(identity), signature: encodeBase64(forged) }], policy), 'usage');
});

test('a small-order or non-canonical R is a bad signature even under an injected primitive that would accept it', () => {
  const k = testKey('weak-r');
  const manifestBytes = encodeManifest(makeManifest({ version: 1 }));
  const acceptAll = () => true;
  for (const hex of [weak.lowOrderEncodings.hex[0]!, weak.lowOrderEncodings.hex[4]!, 'efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f']) {
    const sig = new Uint8Array(64);
    sig.set(hexToBytes(hex), 0);
    throwsCode(
      () => verifySignedManifest(manifestBytes, [{ keyId: k.public.id, signature: encodeBase64(sig) }], { keys: [k.public], threshold: 1 }, undefined, { verify: acceptAll }),
      'bad-signature',
    );
  }
});

test('a key asked about again gets the same answer, and a key that differs in one byte is decoded for itself', () => {
  const good = testKey('again').public.key;
  const offCurve = new Uint8Array(32);
  offCurve[0] = 2; // y = 2: no point (see above)
  for (let round = 0; round < 2; round++) {
    assert.equal(publicKeyProblem(good), null);
    assert.equal(publicKeyProblem(offCurve), 'not a point on the curve');
  }
  // The same bytes in another array, then each byte changed: answered from those bytes, not from a kept answer.
  assert.equal(publicKeyProblem(Uint8Array.from(offCurve)), 'not a point on the curve');
  let refused = 0;
  for (let i = 0; i < 31; i++) {
    const k = Uint8Array.from(good);
    k[i] = k[i]! ^ 1;
    const answer = publicKeyProblem(k);
    assert.equal(publicKeyProblem(Uint8Array.from(k)), answer);
    if (answer === 'not a point on the curve') refused++;
  }
  // About half of all y values are no point: some of these must be refused, or the answers are not their own.
  assert.ok(refused > 0 && refused < 31, String(refused));
});
