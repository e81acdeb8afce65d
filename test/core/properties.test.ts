// Property-based tests of the manifest: random trees round-trip, and the one-pass canonical reader
// agrees with the generic route on random and damaged input. The signed head's properties are in
// properties-head.test.ts, the path rules' in properties-paths.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson, buildManifest, encodeManifest, isSentinelError, parseManifest, parseManifestGeneric, type ManifestEntry } from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0 } from '../helpers/core-factory.js';
import { runs } from '../helpers/properties.js';
import { useEntryScan } from '../../src/core/manifest-plain.js';
import { loadNative } from '../../src/adapters/native.js';

const addon = loadNative();

/** The addon's scan of a manifest's entries. */
function scan(bytes: Uint8Array, start: number): Int32Array | null {
  const f = addon?.scanManifestEntries?.(bytes, start);
  assert.ok(f !== undefined, 'the addon with scanManifestEntries is built (npm run install)');
  return f;
}

/** parseManifest's outcome with the addon's scan of the entries and with the regular expression, which must agree. */
function parsedBothWays(bytes: Uint8Array): ReturnType<typeof outcome> {
  assert.ok(typeof addon?.scanManifestEntries === 'function', 'the addon with scanManifestEntries is built (npm run install)');
  try {
    useEntryScan(null);
    const byRegExp = outcome(() => parseManifest(bytes));
    useEntryScan(scan);
    const byScan = outcome(() => parseManifest(bytes));
    assert.deepEqual(byScan, byRegExp);
    return byScan;
  } finally {
    useEntryScan(scan);
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
      const fast = parsedBothWays(bytes);
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
      assert.deepEqual(parsedBothWays(b), outcome(() => parseManifestGeneric(b)));
    }),
    { numRuns: runs(600) },
  );
});

function makeManifestWith(entries: ManifestEntry[]): ReturnType<typeof buildManifest> {
  return buildManifest({ vaultId: 'v', version: 1, created: T0, expires: ONE_YEAR_LATER, entries });
}
