// Ed25519 through the project's signing layer against RFC 8032 section 7.1, and the key text formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KEY_ID_CONTEXT,
  decodeBase64,
  encodeBase64,
  encodePublicKey,
  encodeSecretKey,
  keyIdOf,
  keyPairFromSeed,
  parsePublicKey,
  parseSecretKey,
  signDetached,
  signManifest,
  signatureContext,
  signatureInput,
  toHex,
  verifyDetached,
  isSentinelError,
} from '../../src/core/index.js';
import { coreFixture, hexToBytes, testKey, throwsCode } from '../helpers/core-factory.js';
import { needs } from '../helpers/env.js';
import nacl from 'tweetnacl';

interface Vector { name: string; secretKey: string; publicKey: string; message: string; signature: string }
const rfc = JSON.parse(new TextDecoder().decode(coreFixture('rfc8032-ed25519.json'))) as { vectors: Vector[] };

test('RFC 8032 fixture holds the five section 7.1 vectors, SHA(abc) message is SHA-512("abc")', () => {
  assert.deepEqual(rfc.vectors.map((v) => v.name), ['TEST 1', 'TEST 2', 'TEST 3', 'TEST 1024', 'TEST SHA(abc)']);
  assert.equal(rfc.vectors[3]!.message.length, 1023 * 2);
  assert.equal(rfc.vectors[4]!.message, toHex(nacl.hash(new TextEncoder().encode('abc'))));
});

for (const v of rfc.vectors) {
  test(`RFC 8032 ${v.name}: public key from seed, byte-exact signature, verification`, () => {
    const seed = hexToBytes(v.secretKey);
    const message = hexToBytes(v.message);
    const expected = hexToBytes(v.signature);
    const { secret, public: pub } = keyPairFromSeed(seed);
    assert.equal(toHex(pub.key), v.publicKey);
    assert.equal(pub.id, keyIdOf(hexToBytes(v.publicKey)));
    assert.equal(toHex(signDetached(message, secret.secretKey)), v.signature);
    assert.equal(verifyDetached(message, expected, pub.key), true);
    // One flipped bit anywhere (message, R, S) must fail.
    const badSig = expected.slice();
    badSig[63] = badSig[63]! ^ 0x01;
    assert.equal(verifyDetached(message, badSig, pub.key), false);
    const badR = expected.slice();
    badR[0] = badR[0]! ^ 0x80;
    assert.equal(verifyDetached(message, badR, pub.key), false);
    if (message.length > 0) {
      const badMsg = message.slice();
      badMsg[0] = badMsg[0]! ^ 0x01;
      assert.equal(verifyDetached(badMsg, expected, pub.key), false);
    } else {
      assert.equal(verifyDetached(new Uint8Array([0]), expected, pub.key), false);
    }
  });
}

test('verifyDetached returns false (never throws) for wrong lengths', () => {
  const v = rfc.vectors[0]!;
  assert.equal(verifyDetached(new Uint8Array(0), hexToBytes(v.signature).slice(0, 63), hexToBytes(v.publicKey)), false);
  assert.equal(verifyDetached(new Uint8Array(0), hexToBytes(v.signature), hexToBytes(v.publicKey).slice(0, 31)), false);
});

test('signManifest signs context + manifest bytes, not the bare bytes', () => {
  const k = keyPairFromSeed(hexToBytes(rfc.vectors[0]!.secretKey));
  const bytes = new TextEncoder().encode('{"x":1}');
  const s = signManifest(bytes, k.secret);
  const raw = decodeBase64(s.signature)!;
  assert.equal(s.keyId, k.public.id);
  assert.equal(verifyDetached(signatureInput(bytes), raw, k.public.key), true);
  assert.equal(verifyDetached(bytes, raw, k.public.key), false);
});

test('signatureInput: manifest bytes laid out right after the context are the message as they are; any other layout is copied', () => {
  const manifest = new TextEncoder().encode('{"x":1}');
  const copy = signatureInput(manifest);
  const ctx = signatureContext();
  assert.deepEqual(copy, new Uint8Array([...ctx, ...manifest]));
  const laidOut = new Uint8Array([...ctx, ...manifest]);
  const view = signatureInput(laidOut.subarray(ctx.length));
  assert.deepEqual(view, copy);
  assert.equal(view.buffer, laidOut.buffer, 'no copy when the context already precedes the bytes');
  // One byte of the prefix off, or too little room before the bytes: the message is the copy.
  const wrong = laidOut.slice();
  wrong[ctx.length - 2] = wrong[ctx.length - 2]! ^ 1;
  const fallback = signatureInput(wrong.subarray(ctx.length));
  assert.deepEqual(fallback, copy);
  assert.notEqual(fallback.buffer, wrong.buffer);
  assert.deepEqual(signatureInput(laidOut.subarray(ctx.length - 1).subarray(1)), copy);
  assert.deepEqual(signatureInput(new Uint8Array([...ctx.subarray(1), ...manifest]).subarray(ctx.length - 1)), copy);
});

test('key id is the first 16 hex of SHA-512(context || public key)', () => {
  const pk = hexToBytes(rfc.vectors[0]!.publicKey);
  const ctx = new TextEncoder().encode(KEY_ID_CONTEXT);
  const expected = toHex(nacl.hash(new Uint8Array([...ctx, ...pk]))).slice(0, 16);
  assert.equal(keyIdOf(pk), expected);
  assert.equal(keyIdOf(pk), '504cf6ae77788e5d');
  throwsCode(() => keyIdOf(pk.slice(1)), 'usage');
  throwsCode(() => keyPairFromSeed(new Uint8Array(31)), 'usage');
});

test('base64 is strict: standard alphabet, padded, zero spare bits', () => {
  for (const n of [0, 1, 2, 3, 31, 32, 33, 64]) {
    const b = nacl.hash(new Uint8Array([n])).slice(0, n);
    const s = encodeBase64(b);
    assert.equal(s, Buffer.from(b).toString('base64'));
    assert.deepEqual(decodeBase64(s), b);
  }
  assert.equal(decodeBase64('QQ='), null);
  assert.equal(decodeBase64('QR=='), null); // spare bits set
  assert.equal(decodeBase64('Q-=='), null);
  assert.equal(decodeBase64('QQ==QQ=='), null);
  assert.equal(decodeBase64('A==='), null);
});

test('public and secret key files round-trip, with and without comment', () => {
  const k = testKey('alice');
  const pubText = encodePublicKey(k.public);
  assert.match(pubText, /^omnimind-sentinel-ed25519-public-v1 [0-9a-f]{16} [A-Za-z0-9+/]{43}= test key alice\n$/);
  assert.deepEqual(parsePublicKey(pubText, 'alice.pub'), k.public);
  const secText = encodeSecretKey(k.secret);
  assert.match(secText, /^omnimind-sentinel-ed25519-secret-v1 [0-9a-f]{16} [A-Za-z0-9+/]{43}= test key alice\n$/);
  assert.deepEqual(parseSecretKey(secText, 'alice.key'), k.secret);
  const bare = keyPairFromSeed(new Uint8Array(32).fill(9));
  assert.deepEqual(parsePublicKey(encodePublicKey(bare.public), 'x'), bare.public);
  assert.deepEqual(parseSecretKey(encodeSecretKey(bare.secret), 'x'), bare.secret);
  // CRLF, surrounding blank and # comment lines are tolerated.
  assert.deepEqual(parsePublicKey(`# release key\r\n\r\n${pubText.trimEnd()}\r\n`, 'x'), k.public);
});

test('secret key file with the 64-byte tweetnacl key is read too', () => {
  const k = testKey('bob');
  const text = `omnimind-sentinel-ed25519-secret-v1 ${k.secret.id} ${encodeBase64(k.secret.secretKey)}\n`;
  const { comment: _c, ...want } = k.secret;
  assert.deepEqual(parseSecretKey(text, 'bob.key'), want);
  const broken = k.secret.secretKey.slice();
  broken[40] = broken[40]! ^ 1;
  throwsCode(() => parseSecretKey(`omnimind-sentinel-ed25519-secret-v1 ${k.secret.id} ${encodeBase64(broken)}\n`, 'bob.key'), 'usage', 'bob.key');
});

test('public key interchange forms: raw base64, OpenSSH ssh-ed25519, PEM SPKI', () => {
  const k = testKey('carol');
  const b64 = encodeBase64(k.public.key);
  assert.deepEqual(parsePublicKey(`${b64}\n`, 'raw.pub'), { id: k.public.id, key: k.public.key });
  const blob = new Uint8Array([0, 0, 0, 11, ...new TextEncoder().encode('ssh-ed25519'), 0, 0, 0, 32, ...k.public.key]);
  const ssh = parsePublicKey(`ssh-ed25519 ${encodeBase64(blob)} carol@build\n`, 'id.pub');
  assert.deepEqual(ssh, { id: k.public.id, key: k.public.key, comment: 'carol@build' });
  const der = new Uint8Array([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, ...k.public.key]);
  const pem = `-----BEGIN PUBLIC KEY-----\n${encodeBase64(der)}\n-----END PUBLIC KEY-----\n`;
  assert.deepEqual(parsePublicKey(pem, 'k.pem'), { id: k.public.id, key: k.public.key });
  throwsCode(() => parsePublicKey(`ssh-rsa ${encodeBase64(blob)}\n`, 'rsa.pub'), 'usage', 'rsa.pub');
  throwsCode(() => parsePublicKey(`ssh-ed25519 ${encodeBase64(blob.slice(0, 50))}\n`, 'short.pub'), 'usage', 'short.pub');
});

test('a secret key where a public key is expected (and vice versa) is refused clearly, never echoing the secret', () => {
  const k = testKey('dave');
  const secText = encodeSecretKey(k.secret);
  const seedB64 = secText.split(' ')[2]!;
  for (const text of [secText, encodeBase64(k.secret.secretKey), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n']) {
    try {
      parsePublicKey(text, 'dave.key');
      assert.fail('secret key accepted as public');
    } catch (e) {
      assert.ok(isSentinelError(e, 'usage'));
      assert.match(e.message, /secret key/);
      assert.equal(e.where, 'dave.key');
      assert.ok(!e.message.includes(seedB64) && !e.toLine().includes(seedB64));
    }
  }
  throwsCode(() => parseSecretKey(encodePublicKey(k.public), 'dave.pub'), 'usage', /public key/);
  throwsCode(() => parseSecretKey(encodeBase64(k.public.key), 'dave.pub'), 'usage', /public key/);
});

test('every malformed key file is a usage error naming the file, and no secret appears in any message', () => {
  const k = testKey('erin');
  const pub = encodePublicKey(k.public);
  const sec = encodeSecretKey(k.secret);
  const seedB64 = sec.split(' ')[2]!;
  const otherId = testKey('frank').public.id;
  const badPublic = [
    '',
    'hello',
    pub.replace(k.public.id, otherId), // id does not match key
    pub.replace(k.public.id, k.public.id.toUpperCase()),
    pub.replace(/ [A-Za-z0-9+/]{43}= /, ' AAAA '),
    pub + pub, // two keys
    pub.replace('test key erin', 'bad\u0007comment'),
  ];
  for (const t of badPublic) throwsCode(() => parsePublicKey(t, 'erin.pub'), 'usage', 'erin.pub');
  const badSecret = [
    '',
    sec.replace(k.secret.id, otherId),
    sec.replace(seedB64, seedB64.slice(0, 40) + '==='),
    sec.replace(seedB64, encodeBase64(new Uint8Array(16))),
    sec + sec,
  ];
  for (const t of badSecret) {
    try {
      parseSecretKey(t, 'erin.key');
      assert.fail('accepted a malformed secret key');
    } catch (e) {
      assert.ok(isSentinelError(e, 'usage'), String(e));
      assert.equal(e.where, 'erin.key');
      assert.ok(!e.toLine().includes(seedB64.slice(0, 20)), 'secret material in error message');
    }
  }
});

test('a PEM public key written by the real openssl is read as the same key', (t) => {
  if (needs(t, hasOpenssl(), 'openssl')) return;
  const k = testKey('carol');
  const dir = mkdtempSync(join(tmpdir(), 'core-keys-'));
  try {
    const pkcs8 = new Uint8Array([...hexToBytes('302e020100300506032b657004220420'), ...k.secret.secretKey.subarray(0, 32)]);
    writeFileSync(join(dir, 'k.der'), pkcs8, { mode: 0o600 });
    execFileSync('openssl', ['pkey', '-inform', 'DER', '-in', join(dir, 'k.der'), '-pubout', '-out', join(dir, 'k.pub.pem')]);
    assert.deepEqual(parsePublicKey(readFileSync(join(dir, 'k.pub.pem'), 'utf8'), 'openssl.pem'), { id: k.public.id, key: k.public.key });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
