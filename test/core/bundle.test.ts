// Bundle framing and the signature block: byte-exact against the Python/OpenSSL reference, incremental reading, limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUNDLE_MAGIC,
  checkDeployable,
  payloadLayout,
  verifyBundleHead,
  assertBundleLimits,
  DEFAULT_LIMITS,
  SIGNATURE_CONTEXT,
  encodeBundleHead,
  encodeSignatures,
  parseBundleHead,
  parseManifest,
  parseSignatures,
  signManifest,
  signatureInput,
  keyPairFromSeed,
  toHex,
  type BundleSignature,
} from '../../src/core/index.js';
import { coreFixture, flipByte, hexToBytes, makeBundle, replaceText, sha256Hex, testKey, throwsCode, utf8 } from '../helpers/core-factory.js';

const manifestBytes = coreFixture('manifest-v1.canonical.json');
const signatureBytes = coreFixture('signatures-v1.json');
const headHex = new TextDecoder().decode(coreFixture('bundle-head-v1.hex')).trim();
const rfcTest1 = keyPairFromSeed(hexToBytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));

test('signatureInput is the context bytes followed by the exact manifest bytes', () => {
  assert.equal(SIGNATURE_CONTEXT, 'omnimind-sentinel/manifest-signature/v1\0');
  const input = signatureInput(manifestBytes);
  assert.deepEqual(input, new Uint8Array([...utf8(SIGNATURE_CONTEXT), ...manifestBytes]));
  assert.equal(input.length, 40 + manifestBytes.length);
});

test('signing the reference manifest with the RFC 8032 TEST 1 key gives the OpenSSL signature block byte for byte', () => {
  const sig = signManifest(manifestBytes, rfcTest1.secret);
  assert.deepEqual(encodeSignatures([sig]), signatureBytes);
  assert.deepEqual(parseSignatures(signatureBytes), [sig]);
});

test('the reference bundle head encodes to the committed hex and parses back', () => {
  const head = encodeBundleHead(manifestBytes, signatureBytes);
  assert.equal(toHex(head), headHex);
  assert.equal(toHex(head.subarray(0, 8)), toHex(utf8('OMSBNDL1')));
  const r = parseBundleHead(head);
  assert.ok(r.ok);
  assert.deepEqual(r.manifestBytes, manifestBytes);
  assert.deepEqual(r.signatureBytes, signatureBytes);
  assert.equal(r.payloadOffset, head.length);
  assert.deepEqual(parseManifest(r.manifestBytes).version, 7);
});

test('parseBundleHead asks for exactly the bytes it needs, at every prefix length', () => {
  const head = encodeBundleHead(manifestBytes, signatureBytes);
  const afterManifest = 12 + manifestBytes.length;
  for (let n = 0; n < head.length; n++) {
    const r = parseBundleHead(head.subarray(0, n));
    assert.equal(r.ok, false, `prefix ${n}`);
    const want = n < 12 ? 12 : n < afterManifest + 4 ? afterManifest + 4 : head.length;
    assert.equal(r.ok ? -1 : r.need, want, `need at prefix ${n}`);
  }
  const extra = new Uint8Array([...head, 1, 2, 3]);
  const r = parseBundleHead(extra);
  assert.ok(r.ok);
  assert.equal(r.payloadOffset, head.length);
});

test('bad magic is malformed-bundle, as soon as the first wrong byte is seen', () => {
  const head = encodeBundleHead(manifestBytes, signatureBytes);
  throwsCode(() => parseBundleHead(flipByte(head, 0)), 'malformed-bundle', 'bundle head');
  throwsCode(() => parseBundleHead(flipByte(head, 7)), 'malformed-bundle');
  throwsCode(() => parseBundleHead(utf8('PK')), 'malformed-bundle');
  throwsCode(() => parseBundleHead(utf8('OMSBNDL2')), 'malformed-bundle');
  assert.deepEqual(parseBundleHead(BUNDLE_MAGIC.subarray(0, 5)), { ok: false, need: 12 });
});

test('a declared manifest length over the limit is too-large before the manifest is read', () => {
  const head = new Uint8Array([...BUNDLE_MAGIC, 0xff, 0xff, 0xff, 0xff]);
  throwsCode(() => parseBundleHead(head), 'too-large', 'bundle head');
  const small = { ...DEFAULT_LIMITS, maxManifestBytes: 100 };
  throwsCode(() => parseBundleHead(new Uint8Array([...BUNDLE_MAGIC, 0, 0, 0, 101]), small), 'too-large');
  assert.deepEqual(parseBundleHead(new Uint8Array([...BUNDLE_MAGIC, 0, 0, 0, 100]), small), { ok: false, need: 116 });
  throwsCode(() => parseBundleHead(new Uint8Array([...BUNDLE_MAGIC, 0, 0, 0, 0])), 'malformed-bundle');
});

test('a declared signature block length over the limit is too-large before it is read', () => {
  const m = new Uint8Array(10);
  const head = new Uint8Array([...BUNDLE_MAGIC, 0, 0, 0, 10, ...m, 0, 1, 0, 1]);
  throwsCode(() => parseBundleHead(head), 'too-large', 'bundle head');
  throwsCode(() => parseBundleHead(head, { ...DEFAULT_LIMITS, maxSignatureBlockBytes: 1000 }), 'too-large');
  assert.deepEqual(parseBundleHead(head, { ...DEFAULT_LIMITS, maxSignatureBlockBytes: 65537 }), { ok: false, need: 26 + 65537 });
});

test('signature block: canonical, sorted by key id, shape checked, limits enforced', () => {
  const b = makeBundle({ signers: [testKey('a'), testKey('b'), testKey('c')] });
  const sigs = parseSignatures(b.signatureBytes);
  assert.deepEqual(sigs.map((s) => s.keyId), [...sigs.map((s) => s.keyId)].sort());
  assert.deepEqual(encodeSignatures([...sigs].reverse()), b.signatureBytes);
  const one = sigs[0]!;
  const enc = (v: unknown): Uint8Array => utf8(JSON.stringify(v));
  throwsCode(() => parseSignatures(enc({ keyId: one.keyId })), 'malformed-bundle', 'signatures');
  throwsCode(() => parseSignatures(enc([{ keyId: one.keyId.toUpperCase(), signature: one.signature }])), 'malformed-bundle', 'signatures');
  throwsCode(() => parseSignatures(enc([{ keyId: one.keyId, signature: one.signature.slice(4) }])), 'malformed-bundle');
  throwsCode(() => parseSignatures(enc([{ keyId: one.keyId, signature: one.signature, by: 'me' }])), 'malformed-bundle');
  throwsCode(() => parseSignatures(enc([{ signature: one.signature, keyId: one.keyId }])), 'malformed-bundle'); // key order
  throwsCode(() => parseSignatures(utf8(` ${new TextDecoder().decode(b.signatureBytes)}`)), 'malformed-bundle'); // whitespace
  throwsCode(() => parseSignatures(enc([sigs[1], sigs[0]])), 'malformed-bundle'); // order
  throwsCode(() => parseSignatures(utf8('[')), 'malformed-bundle');
  throwsCode(() => parseSignatures(new Uint8Array([0x5b, 0xff, 0x5d])), 'malformed-bundle');
  throwsCode(() => parseSignatures(b.signatureBytes, { ...DEFAULT_LIMITS, maxSignatureBlockBytes: b.signatureBytes.length - 1 }), 'too-large');
  const many: BundleSignature[] = Array.from({ length: 65 }, (_, i) => ({ keyId: i.toString(16).padStart(16, '0'), signature: one.signature }));
  throwsCode(() => parseSignatures(enc(many)), 'too-large');
  assert.equal(parseSignatures(enc(many.slice(0, 64))).length, 64);
  assert.deepEqual(parseSignatures(utf8('[]')), []);
  throwsCode(() => encodeSignatures([{ keyId: 'nothex', signature: one.signature }]), 'usage');
});

test('a tampered manifest inside a well-framed head still parses as a head (signature checks come later)', () => {
  const b = makeBundle();
  const altered = replaceText(b.manifestBytes, '"version":1', '"version":9');
  const head = encodeBundleHead(altered, b.signatureBytes);
  const r = parseBundleHead(head);
  assert.ok(r.ok);
  assert.deepEqual(r.manifestBytes, altered);
});

test('limits from configuration are validated: positive safe integers, known fields, u32-sized block limits', () => {
  assertBundleLimits({ ...DEFAULT_LIMITS });
  throwsCode(() => assertBundleLimits({ ...DEFAULT_LIMITS, maxEntries: 0 }), 'config', 'limits');
  throwsCode(() => assertBundleLimits({ ...DEFAULT_LIMITS, maxPathBytes: 1.5 }), 'config');
  throwsCode(() => assertBundleLimits({ ...DEFAULT_LIMITS, maxManifestBytes: 2 ** 32 }), 'config');
  throwsCode(() => assertBundleLimits({ ...DEFAULT_LIMITS, maxFiles: 3 }), 'config');
  throwsCode(() => assertBundleLimits(null), 'config');
  const { maxTotalBytes: _t, ...missing } = DEFAULT_LIMITS;
  throwsCode(() => assertBundleLimits(missing), 'config');
  assert.ok(Object.isFrozen(DEFAULT_LIMITS));
});

test('the complete reference bundle built by Python/OpenSSL verifies under the RFC 8032 TEST 1 key, payload in manifest order', () => {
  const bundle = coreFixture('bundle-v1.omsb');
  const ref = JSON.parse(new TextDecoder().decode(coreFixture('reference.json'))) as { keyId: string; releaseId: string; files: Record<string, string> };
  const v = verifyBundleHead(bundle, { keys: [rfcTest1.public], threshold: 1 });
  assert.equal(v.releaseId, ref.releaseId);
  assert.deepEqual(v.signers, [ref.keyId]);
  const layout = payloadLayout(v.manifest);
  assert.equal(bundle.length, v.payloadOffset + layout.totalBytes);
  for (const { entry, offset } of layout.files) {
    const bytes = bundle.subarray(v.payloadOffset + offset, v.payloadOffset + offset + entry.size);
    assert.deepEqual(bytes, new Uint8Array(Buffer.from(ref.files[entry.path]!, 'base64')), entry.path);
    assert.equal(sha256Hex(bytes), entry.sha256, entry.path);
  }
  checkDeployable(v, { vaultId: 'phi-engine', highestVersion: 6, now: new Date('2099-12-31T23:59:59.998Z') });
});
