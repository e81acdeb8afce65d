// Property-based tests of the manifest and bundle parser: random trees round-trip, random
// mutations of a signed head are refused or verify to the very same bytes, random input never crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import fc from 'fast-check';
import {
  MANIFEST_FORMAT,
  canonicalJson,
  comparePaths,
  assertManifest,
  assertSafePath,
  buildManifest,
  encodeManifest,
  isSentinelError,
  parseBundleHead,
  parseManifest,
  parseManifestGeneric,
  parseSignatures,
  verifyBundleHead,
  type ManifestEntry,
} from '../../src/core/index.js';
import { isPlainAsciiPath } from '../../src/core/manifest-rules.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { ONE_YEAR_LATER, T0, makeBundle, policyOf, testKey } from '../helpers/core-factory.js';

/** Run counts sized for CI; CORE_PROPERTY_SCALE=20 (say) searches harder locally. */
function runs(n: number): number {
  return Math.ceil(n * Number(process.env.CORE_PROPERTY_SCALE ?? 1));
}

/** Runs fn; passes if it returns or throws a SentinelError, fails on any other exception. */
function onlySentinelErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (isSentinelError(e)) return false;
    throw e;
  }
}

const nameArb = fc
  .string({ unit: fc.constantFrom('a', 'b', 'Z', 'é', 'φ', '\uff21', '\u{1d711}', '-', '.', ' ', '"', '_'), minLength: 1, maxLength: 4 })
  .filter((s) => s !== '.' && s !== '..');

/** A random valid tree: nested dirs, files with any mode 0..0o777, symlinks pointing at files or dirs (or nowhere) inside. */
const treeArb = fc
  .record({
    paths: fc.uniqueArray(fc.array(nameArb, { minLength: 1, maxLength: 4 }), { maxLength: 25, selector: (p) => p.join('/') }),
    leafKinds: fc.array(fc.constantFrom('file', 'file', 'symlink', 'dir'), { minLength: 25, maxLength: 25 }),
    modes: fc.array(fc.integer({ min: 0, max: 0o777 }), { minLength: 25, maxLength: 25 }),
    sizes: fc.array(fc.integer({ min: 0, max: 2 ** 30 }), { minLength: 25, maxLength: 25 }),
    hashes: fc.array(fc.stringMatching(/^[0-9a-f]{64}$/), { minLength: 25, maxLength: 25 }),
    targets: fc.array(fc.nat(), { minLength: 25, maxLength: 25 }),
    dangling: fc.array(nameArb, { minLength: 25, maxLength: 25 }),
  })
  .map(({ paths, leafKinds, modes, sizes, hashes, targets, dangling }) => {
    const dirs = new Set<string>();
    for (const p of paths) for (let i = 1; i < p.length; i++) dirs.add(p.slice(0, i).join('/'));
    const entries = new Map<string, ManifestEntry>();
    for (const d of dirs) entries.set(d, { type: 'dir', path: d, mode: 0o755 });
    const leaves = paths.map((p) => p.join('/')).filter((p) => !dirs.has(p));
    const nonLinks = [...dirs, ...leaves.filter((_, i) => leafKinds[i] !== 'symlink')];
    leaves.forEach((path, i) => {
      const kind = leafKinds[i]!;
      if (kind === 'file') entries.set(path, { type: 'file', path, mode: modes[i]!, size: sizes[i]!, sha256: hashes[i]! });
      else if (kind === 'dir') entries.set(path, { type: 'dir', path, mode: modes[i]! });
      else {
        const depth = path.split('/').length - 1;
        const to = nonLinks.length > 0 && targets[i]! % 3 !== 0 ? nonLinks[targets[i]! % nonLinks.length]! : `missing-${dangling[i]!}`;
        entries.set(path, { type: 'symlink', path, target: `${'../'.repeat(depth)}${to}` });
      }
    });
    return [...entries.values()];
  });

test('property: random valid trees round-trip through build, encode, parse and re-encode', () => {
  fc.assert(
    fc.property(treeArb, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom('phi-engine', 'a', 'v1.2_x-y'), (entries, version, vaultId) => {
      const shuffled = [...entries].reverse();
      const m = buildManifest({ vaultId, version, created: T0, expires: ONE_YEAR_LATER, entries: shuffled });
      const bytes = encodeManifest(m);
      const parsed = parseManifest(bytes);
      assert.deepEqual(parsed, m);
      assert.deepEqual(encodeManifest(parsed), bytes);
      assert.equal(parsed.entries.length, entries.length);
      // The fast manifest writer and the generic canonical JSON writer agree byte for byte.
      assert.equal(new TextDecoder().decode(bytes), canonicalJson(m));
    }),
    { numRuns: runs(300) },
  );
});

/** What a parse did: the value it returned, or the code, where and message of what it threw. */
function outcome(parse: () => unknown): unknown {
  try {
    return { value: parse() };
  } catch (e) {
    if (!isSentinelError(e)) throw e;
    return { code: e.code, where: e.where, message: e.message };
  }
}

/** Characters that matter to JSON and to the rules, for text-level edits of a manifest. */
const editChar = fc.constantFrom('\\', '"', ',', ':', '{', '}', '[', ']', '0', '1', '-', '+', '.', 'e', 'E', ' ', '\n', '\t', '\u0001', '\u007f', 'u', 'a', 'é', '\u2028', '/', 'x');

test('property: the one-pass canonical reader and the generic route (JSON.parse, every rule, re-encode and compare) agree on every input', () => {
  const edit = fc.oneof(
    fc.tuple(fc.nat(), fc.string({ unit: editChar, minLength: 1, maxLength: 3 })).map(([at, ins]) => (t: string) => t.slice(0, at % (t.length + 1)) + ins + t.slice(at % (t.length + 1))),
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 4 })).map(([at, n]) => (t: string) => t.slice(0, at % t.length) + t.slice((at % t.length) + n)),
    fc.tuple(fc.nat(), editChar).map(([at, c]) => (t: string) => t.slice(0, at % t.length) + c + t.slice((at % t.length) + 1)),
    // One character written as a \u escape (valid JSON for the same value, but not the canonical form).
    fc.tuple(fc.nat(), fc.boolean()).map(([at, upper]) => (t: string) => {
      const i = at % t.length;
      const hex = t.charCodeAt(i).toString(16).padStart(4, '0');
      return `${t.slice(0, i)}\\u${upper ? hex.toUpperCase() : hex}${t.slice(i + 1)}`;
    }),
    // One number written another way: -0, a sign, a leading zero, a fraction or an exponent.
    fc.tuple(fc.nat(), fc.constantFrom('-0', '-$', '+$', '0$', '$.0', '$e0', '$0')).map(([k, form]) => (t: string) => {
      const numbers = [...t.matchAll(/:(\d+)(?=[,}])/g)];
      const m = numbers[k % Math.max(1, numbers.length)];
      if (m === undefined) return t;
      return `${t.slice(0, m.index + 1)}${form.replace('$', m[1]!)}${t.slice(m.index + m[0].length)}`;
    }),
  );
  const targetArb = fc.string({ unit: fc.constantFrom('a', '\\', '"', 'é', '\u2028', '/', '\ud83d\ude00'), maxLength: 6 }).map((t) => `x${t}`);
  fc.assert(
    fc.property(treeArb, targetArb, fc.array(edit, { maxLength: 3 }), (entries, target, edits) => {
      const all = [...entries.filter((e) => e.path !== 'zz'), { type: 'symlink', path: 'zz', target } as ManifestEntry];
      const m = buildManifest({ vaultId: 'v', version: 3, created: T0, expires: ONE_YEAR_LATER, entries: all });
      const text = edits.reduce((t, f) => f(t), new TextDecoder().decode(encodeManifest(m)));
      const bytes = new TextEncoder().encode(text);
      const fast = outcome(() => parseManifest(bytes));
      assert.deepEqual(fast, outcome(() => parseManifestGeneric(bytes)));
      if (edits.length === 0) assert.deepEqual(fast, { value: m });
    }),
    { numRuns: runs(1000) },
  );
  // Byte-level damage too (invalid UTF-8, truncation inside a multi-byte character).
  const base = encodeManifest(makeManifestWith([{ type: 'file', path: 'é"', mode: 0o644, size: 1, sha256: '0'.repeat(64) }]));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), (flips) => {
      const b = base.slice();
      for (const [at, x] of flips) b[at] = b[at]! ^ x;
      assert.deepEqual(outcome(() => parseManifest(b)), outcome(() => parseManifestGeneric(b)));
    }),
    { numRuns: runs(600) },
  );
});

function makeManifestWith(entries: ManifestEntry[]): ReturnType<typeof buildManifest> {
  return buildManifest({ vaultId: 'v', version: 1, created: T0, expires: ONE_YEAR_LATER, entries });
}

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

test('property: random strings (any code point, lone surrogates included) never crash the path validator', () => {
  const pathArb = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(fc.constantFrom('a', '.', '..', '', '/', '\\', '\0', '\ud800', '\udc00', 'é', '\n'), { maxLength: 12 }).map((p) => p.join('/')),
  );
  fc.assert(
    fc.property(pathArb, (p) => {
      const ok = onlySentinelErrors(() => assertSafePath(p));
      if (ok) {
        assert.ok(!p.startsWith('/') && !p.split('/').some((c) => c === '' || c === '.' || c === '..'), `accepted ${JSON.stringify(p)}`);
        assert.ok(!p.includes('\0') && !p.includes('\\'));
      }
    }),
    { numRuns: runs(2000) },
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

test('property: accepted symlinks never resolve outside the release on the real filesystem', () => {
  const comp = fc.constantFrom('a', 'b', 'l', 'm', '..', '.', '');
  const linkArb = fc.record({ dir: fc.constantFrom('', 'a', 'a/b'), name: fc.constantFrom('l', 'm', 'n'), target: fc.array(comp, { minLength: 1, maxLength: 5 }).map((c) => c.join('/')) });
  const root = mkdtempSync(join(tmpdir(), 'core-symlinks-'));
  let n = 0;
  let acceptedCount = 0;
  try {
    fc.assert(
      fc.property(fc.uniqueArray(linkArb, { minLength: 1, maxLength: 4, selector: (l) => `${l.dir}/${l.name}` }), (links) => {
        const entries: ManifestEntry[] = [
          { type: 'dir', path: 'a', mode: 0o755 },
          { type: 'dir', path: 'a/b', mode: 0o755 },
          { type: 'file', path: 'a/b/f', mode: 0o644, size: 0, sha256: '0'.repeat(64) },
          ...links.map((l): ManifestEntry => ({ type: 'symlink', path: l.dir === '' ? l.name : `${l.dir}/${l.name}`, target: l.target })),
        ];
        let ok = false;
        try {
          buildManifest({ vaultId: 'v', version: 1, created: T0, expires: ONE_YEAR_LATER, entries });
          ok = true;
        } catch (e) {
          if (!isSentinelError(e, 'bad-path')) throw e;
        }
        if (!ok) return;
        acceptedCount++;
        const rel = join(root, String(n++));
        mkdirSync(join(rel, 'a', 'b'), { recursive: true });
        writeFileSync(join(rel, 'a', 'b', 'f'), '');
        for (const e of entries) if (e.type === 'symlink') symlinkSync(e.target, join(rel, e.path));
        const real = realpathSync(rel);
        for (const e of entries) {
          if (e.type !== 'symlink') continue;
          let resolved: string;
          try {
            resolved = realpathSync(join(rel, e.path));
          } catch {
            continue; // dangling, loop or not a directory: the kernel refuses it, nothing escapes
          }
          assert.ok(resolved === real || resolved.startsWith(real + sep), `${e.path} -> ${e.target} resolves to ${resolved}, outside ${real}`);
        }
      }),
      { numRuns: runs(300) },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.ok(acceptedCount > 20, `too few accepted symlink sets (${acceptedCount}) for the property to mean anything`);
});

test('property: the plain-ASCII fast path of the path rules accepts only paths the full rules accept, and orders them as comparePaths does', () => {
  const part = fc.constantFrom('a', 'b', '.', '..', '...', '.a', 'a.', '', ' ', '~', '\\', '\0', '\u001f', '\u007f', '\u0080', 'é', '\ud800', 'x'.repeat(255), 'x'.repeat(256));
  const pathArb = fc.oneof(
    fc.array(part, { maxLength: 8 }).map((p) => p.join('/')),
    fc.array(part, { minLength: 1, maxLength: 6 }).map((p) => `/${p.join('/')}`),
    fc.array(part, { minLength: 1, maxLength: 6 }).map((p) => `${p.join('/')}/`),
    fc.string({ unit: 'binary-ascii', maxLength: 30 }),
    fc.array(fc.constantFrom('a', 'b', '.a', 'a.', '...', ' ', '~', 'x'.repeat(255)), { minLength: 1, maxLength: 5 }).map((p) => p.join('/')),
  );
  let plainCount = 0;
  fc.assert(
    fc.property(pathArb, pathArb, (a, b) => {
      for (const p of [a, b]) {
        if (!isPlainAsciiPath(p, DEFAULT_LIMITS)) continue;
        plainCount++;
        assert.doesNotThrow(() => assertSafePath(p), `fast path accepted ${JSON.stringify(p)}`);
      }
      if (isPlainAsciiPath(a, DEFAULT_LIMITS) && isPlainAsciiPath(b, DEFAULT_LIMITS)) assert.equal(a > b, comparePaths(a, b) > 0);
    }),
    { numRuns: runs(3000) },
  );
  assert.ok(plainCount > 500, `too few plain paths (${plainCount}) for the property to mean anything`);
  // Limits: a 255-byte name passes, 256 does not; the total is the caller's limit.
  assert.equal(isPlainAsciiPath('x'.repeat(255), DEFAULT_LIMITS), true);
  assert.equal(isPlainAsciiPath('x'.repeat(256), DEFAULT_LIMITS), false);
  assert.equal(isPlainAsciiPath('a/b', { ...DEFAULT_LIMITS, maxPathBytes: 2 }), false);
  for (const p of ['.', '..', 'a/./b', 'a/../b', '/a', 'a/', 'a//b', 'a\\b', 'a\u007fb', 'é']) assert.equal(isPlainAsciiPath(p, DEFAULT_LIMITS), false, JSON.stringify(p));
  for (const p of ['.a', 'a..', '...', 'a b/~c', 'd000/f001']) assert.equal(isPlainAsciiPath(p, DEFAULT_LIMITS), true, JSON.stringify(p));
});

test('property: path order is bytewise order of UTF-8 (also around surrogates and U+E000..U+FFFF)', () => {
  const unit = fc.oneof(fc.constantFrom('a', 'Z', '\u00e9', '\ue000', '\uffff', '\uff21', '\u{10000}', '\u{1d711}', '\u{10ffff}'), fc.string({ unit: 'grapheme', maxLength: 1 }));
  const str = fc.array(unit, { maxLength: 6 }).map((u) => u.join(''));
  fc.assert(
    fc.property(str, str, (a, b) => {
      assert.equal(comparePaths(a, b), Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))));
    }),
    { numRuns: runs(3000) },
  );
});
