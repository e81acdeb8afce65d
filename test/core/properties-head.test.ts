// Property-based tests of the signed bundle head: random mutations of a signed head are refused or
// verify to the very same bytes, and random input never crashes the manifest, signature or head parsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MANIFEST_FORMAT, assertManifest, isSentinelError, parseBundleHead, parseManifest, parseSignatures, verifyBundleHead } from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0, makeBundle, policyOf, testKey } from '../helpers/core-factory.js';
import { onlySentinelErrors, runs } from '../helpers/properties.js';

// Small head so the exhaustive walk stays fast: one dir, one file, two signers.
const alice = testKey('alice');
const bob = testKey('bob');
const small = makeBundle({ signers: [alice, bob], tree: [{ type: 'dir', path: 'p' }, { type: 'file', path: 'p/x', content: 'x' }] });

/** Offsets in the head of the manifest's decimal digits (inside hashes, sizes, modes, times, version). */
const digitOffsets = [...small.manifestBytes.keys()].filter((i) => small.manifestBytes[i]! >= 0x30 && small.manifestBytes[i]! <= 0x39).map((i) => 12 + i);

function acceptsOnlyOriginal(head: Uint8Array, threshold: number): void {
  try {
    const v = verifyBundleHead(head, policyOf([alice, bob], threshold));
    assert.deepEqual(v.manifestBytes, small.manifestBytes, 'a mutated head verified to a different manifest');
  } catch (e) {
    if (!isSentinelError(e)) throw e;
  }
}

test('a bit flip in every framing and signature byte (every 5th manifest byte) is refused, or verifies to the same manifest bytes', () => {
  const signatureBlockAt = 12 + small.manifestBytes.length + 4;
  let refused = 0;
  let tried = 0;
  for (let i = 0; i < small.head.length; i++) {
    // Every manifest byte takes the same path (signature check fails): sample them to keep the test fast.
    if (i >= 12 && i < signatureBlockAt - 4 && i % 5 !== 0) continue;
    tried++;
    const h = small.head.slice();
    h[i] = h[i]! ^ (i % 2 === 0 ? 0x01 : 0x80);
    try {
      const v = verifyBundleHead(h, policyOf([alice, bob], 1));
      assert.deepEqual(v.manifestBytes, small.manifestBytes);
      // e.g. a key id turned into an unknown one: that signature is ignored, the other still carries threshold 1.
      assert.ok(i >= signatureBlockAt, `flip at byte ${i} (framing or manifest) was accepted`);
    } catch (e) {
      assert.ok(isSentinelError(e), `byte ${i}: ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused >= tried - (small.head.length - signatureBlockAt), `only ${refused} of ${tried} flips refused`);
});

test('property: random multi-byte mutations, insertions, deletions and truncations are refused or verify identically', () => {
  const mutation = fc.oneof(
    fc.array(fc.tuple(fc.nat({ max: small.head.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => (h: Uint8Array) => {
      const out = h.slice();
      for (const [at, x] of edits) out[at] = out[at]! ^ x;
      return out;
    }),
    fc.tuple(fc.nat({ max: small.head.length }), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, ins]) => (h: Uint8Array) => new Uint8Array([...h.subarray(0, at), ...ins, ...h.subarray(at)])),
    fc.tuple(fc.nat({ max: small.head.length - 1 }), fc.integer({ min: 1, max: 16 })).map(([at, n]) => (h: Uint8Array) => new Uint8Array([...h.subarray(0, at), ...h.subarray(at + n)])),
    fc.nat({ max: small.head.length - 1 }).map((n) => (h: Uint8Array) => h.slice(0, n)),
    // Still-valid manifests: one digit or hex character swapped for another of its class, so only the signature stops it.
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 9 })).map(([pick, d]) => (h: Uint8Array) => {
      const at = digitOffsets[pick % digitOffsets.length]!;
      const out = h.slice();
      out[at] = 0x30 + ((out[at]! - 0x30 + d) % 10);
      return out;
    }),
  );
  fc.assert(
    fc.property(mutation, fc.constantFrom(1, 2), (mutate, threshold) => {
      const h = mutate(small.head);
      fc.pre(h.length !== small.head.length || h.some((b, i) => b !== small.head[i]));
      acceptsOnlyOriginal(h, threshold);
    }),
    { numRuns: runs(400) },
  );
});

test('property: random bytes and random JSON never crash the manifest, signature or head parsers', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      onlySentinelErrors(() => parseManifest(b));
      onlySentinelErrors(() => parseSignatures(b));
      onlySentinelErrors(() => parseBundleHead(b));
      onlySentinelErrors(() => verifyBundleHead(new Uint8Array([...small.head.subarray(0, 12), ...b]), policyOf([alice])));
    }),
    { numRuns: runs(1000) },
  );
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      onlySentinelErrors(() => assertManifest(v));
      onlySentinelErrors(() => assertManifest({ format: MANIFEST_FORMAT, vaultId: 'v', version: 1, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries: [v] }));
      onlySentinelErrors(() => parseSignatures(new TextEncoder().encode(JSON.stringify(v))));
    }),
    { numRuns: runs(1000) },
  );
});
