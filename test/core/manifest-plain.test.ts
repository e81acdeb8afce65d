// The one-pass reader of the common manifest (manifest-plain.ts) against the strict route (JSON.parse,
// every rule, re-encode and compare): it must accept only what the strict route accepts, with the same
// value, and say nothing (null) otherwise, so every refusal still comes from the strict route. Held
// to it on every single-byte change of valid manifests, on every edge of the rules it checks itself,
// and on the common shape, which it must read without falling back. Both of its ways are held to it,
// and to each other: the addon's scan of the bytes (native/src/manifest-scan.c) and the regular
// expression a process without the addon uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, MANIFEST_FORMAT, canonicalJson, isSentinelError, parseManifestGeneric, type BundleLimits, type ManifestEntry } from '../../src/core/index.js';
import { readPlainManifest, useEntryScan } from '../../src/core/manifest-plain.js';
import { loadNative } from '../../src/adapters/native.js';
import { ONE_YEAR_LATER, T0 } from '../helpers/core-factory.js';

const H = 'a'.repeat(64);

const addon = loadNative();

/** The addon's scan of a manifest's entries. */
function scan(bytes: Uint8Array, start: number): Int32Array | null {
  const f = addon?.scanManifestEntries?.(bytes, start);
  assert.ok(f !== undefined, 'the addon with scanManifestEntries is built (npm run install)');
  return f;
}

/** The fast reader's answer, read both ways (the addon's scan and the regular expression), which must agree. */
function fast(text: string, limits: BundleLimits): ReturnType<typeof readPlainManifest> {
  assert.ok(typeof addon?.scanManifestEntries === 'function', 'the addon with scanManifestEntries is built (npm run install)');
  const bytes = new TextEncoder().encode(text);
  try {
    useEntryScan(null);
    const byRegExp = readPlainManifest(text, limits, bytes);
    useEntryScan(scan);
    const byScan = readPlainManifest(text, limits, bytes);
    assert.deepEqual(byScan, byRegExp, `the two ways differ on ${JSON.stringify(text.slice(0, 300))}`);
    return byScan;
  } finally {
    useEntryScan(scan);
  }
}

/** The strict route's answer for a text: the value, or the error it throws. */
function strict(text: string, limits: BundleLimits = DEFAULT_LIMITS): { value: unknown } | { error: string } {
  try {
    return { value: parseManifestGeneric(new TextEncoder().encode(text), limits) };
  } catch (e) {
    if (!isSentinelError(e)) throw e;
    return { error: `${e.code} ${e.where ?? ''} ${e.message}` };
  }
}

/** The fast reader never accepts what the strict route refuses, and accepts with the very same value. */
function agrees(text: string, limits: BundleLimits = DEFAULT_LIMITS): 'read' | 'declined' {
  const read = fast(text, limits);
  const want = strict(text, limits);
  if (read === null) return 'declined';
  assert.ok('value' in want, `fast path accepted what the strict route refuses (${'error' in want ? want.error : ''}): ${JSON.stringify(text.slice(0, 300))}`);
  assert.deepEqual(read, want.value);
  return 'read';
}

/** Canonical text of a manifest with these entries (in the order given), valid or not. */
function textOf(entries: ManifestEntry[]): string {
  return canonicalJson({ format: MANIFEST_FORMAT, vaultId: 'v-1.x', version: 7, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries });
}

const file = (path: string, extra: Partial<{ mode: number; size: number; sha256: string }> = {}): ManifestEntry => ({ type: 'file', path, mode: 0o644, size: 3, sha256: H, ...extra });
const dir = (path: string, mode = 0o755): ManifestEntry => ({ type: 'dir', path, mode });
const link = (path: string, target: string): ManifestEntry => ({ type: 'symlink', path, target });

/** A small valid manifest of every entry type, nested directories and symlinks that resolve inside. */
const BASE = textOf([
  dir('a'),
  file('a-b'),
  dir('a/b', 0o700),
  file('a/b/c', { mode: 0o600, size: 12345 }),
  file('a/f', { size: 0 }),
  link('a/l', 'b/c'),
  link('a/up', '../z'),
  dir('d'),
  file('d/.x', { mode: 0 }),
  file('z', { mode: 0o777, size: DEFAULT_LIMITS.maxFileBytes }),
]);

test('the common shape is read in one pass, files, directories and symlinks included, with the value of the strict route', () => {
  assert.equal(agrees(BASE), 'read');
  const many: ManifestEntry[] = [dir('d000')];
  for (let i = 0; i < 300; i++) many.push(file(`d000/f${String(i).padStart(3, '0')}`, { size: i, sha256: i.toString(16).padStart(64, '0') }));
  assert.equal(agrees(textOf(many)), 'read');
  assert.equal(agrees(textOf([])), 'read');
});

test('every single-byte change of a valid manifest: the fast path accepts only what the strict route accepts, with the same value', () => {
  // Characters that matter to JSON, to the path rules and to the integer forms, and a few outside ASCII.
  const chars = [...'\\"/.,:{}[]0129afAFxz -+e~\u007f\u0000\u0001\n\u00e9\u2028'];
  let read = 0;
  let declined = 0;
  for (let i = 0; i < BASE.length; i++) {
    for (const c of [...chars, '']) {
      if (BASE[i] === c) continue;
      for (const text of c === '' ? [BASE.slice(0, i) + BASE.slice(i + 1)] : [BASE.slice(0, i) + c + BASE.slice(i + 1), BASE.slice(0, i) + c + BASE.slice(i)]) {
        if (agrees(text) === 'read') read++;
        else declined++;
      }
    }
  }
  // Some changes keep a valid manifest (another digit in a hash, size or mode; another name): both read it.
  assert.ok(read > 500 && declined > 10000, `read ${read}, declined ${declined}`);
});

test('each rule the fast path checks itself, on both sides of its edge', () => {
  const long = 'n'.repeat(255);
  const cases: [ManifestEntry[], 'read' | 'declined'][] = [
    [[file(long)], 'read'],
    [[dir(long), file(`${long}/${long}`)], 'read'],
    [[link('l', `${'x/'.repeat(2047)}y`)], 'read'],
    [[file('f', { mode: 0o777 })], 'read'],
    [[file('f', { size: DEFAULT_LIMITS.maxFileBytes })], 'read'],
    [[file('...'), file('.a..'), file('a.')], 'read'],
    [[link('l', '.')], 'read'],
    [[dir('a'), link('a/l', '..')], 'read'],
  ];
  for (const [entries, want] of cases) assert.equal(agrees(textOf(entries)), want, JSON.stringify(entries).slice(0, 200));
  // Sizes around 2^31 and 2^32 (the addon's scan gives a size in two integers) and the largest integer, where the limits allow them.
  const huge = { ...DEFAULT_LIMITS, maxFileBytes: Number.MAX_SAFE_INTEGER, maxTotalBytes: Number.MAX_SAFE_INTEGER };
  for (const size of [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    assert.equal(agrees(textOf([file('f', { size })]), huge), 'read', String(size));
    assert.equal(fast(textOf([file('f', { size })]), huge)?.entries[0]?.type === 'file' && (fast(textOf([file('f', { size })]), huge)?.entries[0] as { size: number }).size, size);
  }
  const f = textOf([file('f')]);
  const fiveOfTheLargest = ['a', 'b', 'c', 'd', 'e'].map((p) => file(p, { size: DEFAULT_LIMITS.maxFileBytes }));
  const refused = [
    f.replace('"mode":420', '"mode":512'),
    f.replace('"mode":420', '"mode":2541'),
    f.replace('"mode":420', '"mode":0420'),
    f.replace(H, H.slice(1)),
    f.replace(H, `${H}a`),
    f.replace(H, H.toUpperCase()),
    f.replace('"size":3', `"size":${DEFAULT_LIMITS.maxFileBytes + 1}`),
    f.replace('"size":3', '"size":9007199254740993'),
    f.replace('"size":3', '"size":03'),
    textOf(fiveOfTheLargest),
    textOf([file(`${long}n`)]),
    textOf([dir(long), file(`${long}/x${'y'.repeat(255)}`)]),
    textOf([file('.')]),
    textOf([file('..')]),
    textOf([dir('a'), file('a/./f')]),
    textOf([dir('a'), file('a/../f')]),
    textOf([file('/f')]),
    textOf([file('f/')]),
    textOf([dir('a'), file('a//f')]),
    textOf([file('f'), file('f')]),
    textOf([file('g'), file('f')]),
    textOf([file('a/f')]),
    textOf([file('a'), file('a/b')]),
    textOf([link('a', 'x'), file('a/b')]),
    textOf([link('l', '/x')]),
    textOf([link('l', '../x')]),
    textOf([link('l', `${'x/'.repeat(2047)}yz`)]),
    textOf([link('l', 'm'), link('m', 'l')]),
    f.replace('"version":7', '"version":0'),
    f.replace('"version":7', '"version":9007199254740992'),
    f.replace('"vaultId":"v-1.x"', '"vaultId":"V"'),
    f.replace(MANIFEST_FORMAT, 'omnimind-sentinel/manifest/v2'),
    f.replace('2027-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'),
    f.replace('2027-01-01T00:00:00.000Z', '2027-02-30T00:00:00.000Z'),
    `${f}\n`,
  ];
  for (const text of refused) {
    assert.equal(fast(text, DEFAULT_LIMITS), null, text.slice(0, 200));
    assert.ok('error' in strict(text), `the strict route accepts ${text.slice(0, 200)}`);
  }
  // The limits given are the limits checked (a lower path limit, entry count, total).
  const t = textOf([dir('ab'), file('ab/cd')]);
  assert.equal(agrees(t, { ...DEFAULT_LIMITS, maxPathBytes: 5 }), 'read');
  assert.equal(fast(t, { ...DEFAULT_LIMITS, maxPathBytes: 4 }), null);
  assert.equal(fast(t, { ...DEFAULT_LIMITS, maxEntries: 1 }), null);
  assert.equal(fast(t, { ...DEFAULT_LIMITS, maxFileBytes: 2 }), null);
  assert.equal(fast(t, { ...DEFAULT_LIMITS, maxTotalBytes: 2 }), null);
});

test('what the fast path leaves to the strict route: escapes and non-ASCII names are read there, unchanged', () => {
  for (const entries of [[file('say "hi"')], [link('l', 'back\\slash')], [file('caf\u00e9')], [link('l', 'caf\u00e9')], [file('\u{1d711}')]]) {
    const text = textOf(entries);
    assert.equal(fast(text, DEFAULT_LIMITS), null);
    assert.ok('value' in strict(text));
  }
});

test("the addon's scan: thousands of entries (its buffer grows), text cut anywhere in the entries, and its arguments", () => {
  assert.ok(typeof addon?.scanManifestEntries === 'function', 'the addon with scanManifestEntries is built (npm run install)');
  const many: ManifestEntry[] = [];
  for (let d = 0; d < 30; d++) {
    const name = `d${String(d).padStart(2, '0')}`;
    many.push(dir(name));
    for (let i = 0; i < 100; i++) many.push(i % 10 === 9 ? link(`${name}/e${String(i).padStart(3, '0')}`, `e${String(i - 1).padStart(3, '0')}`) : file(`${name}/e${String(i).padStart(3, '0')}`, { size: i }));
  }
  const text = textOf(many);
  assert.equal(agrees(text), 'read');
  const bytes = new TextEncoder().encode(text);
  const start = text.indexOf('[') + 1;
  const f = scan(bytes, start);
  assert.ok(f !== null && f.length === many.length * 7 + 1 && f[f.length - 1] === text.indexOf('],"expires"') + 1);
  // Cut before the closing ']' (inside an entry or between two): never read past the end, never accepted.
  for (const end of [start + 1, start + 40, text.indexOf('],"expires"'), text.indexOf('],"expires"') - 1]) assert.equal(scan(bytes.subarray(0, end), start), null);
  assert.throws(() => scan(text as unknown as Uint8Array, 0), { name: 'TypeError' });
  assert.throws(() => scan(new Uint16Array(4) as unknown as Uint8Array, 0), { name: 'TypeError' });
  assert.throws(() => scan(bytes, bytes.length + 1), { name: 'RangeError' });
  assert.throws(() => scan(bytes, 1.5), { name: 'RangeError' });
  assert.equal(scan(bytes, bytes.length), null);
});
