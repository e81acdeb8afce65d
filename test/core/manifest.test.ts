// The manifest: canonical bytes against an independent (Python) encoding, and one test per rejection
// rule of its encoding, fields and size limits. Entry rules (paths, order, parents, types, modes) are
// in manifest-entries.test.ts, symlink rules in manifest-symlinks.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, buildManifest, encodeManifest, parseManifest, payloadLayout, type ManifestEntry } from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0, coreFixture, makeManifest, replaceText, sha256Hex, throwsCode, utf8 } from '../helpers/core-factory.js';
import { file, link, manifestWith, parseJson } from '../helpers/manifest-entries.js';

test('canonical encoding of the reference manifest equals the Python-built fixture byte for byte', () => {
  const fixture = coreFixture('manifest-v1.canonical.json');
  const ref = JSON.parse(new TextDecoder().decode(coreFixture('reference.json'))) as { files: Record<string, string> };
  const sizes = Object.fromEntries(Object.entries(ref.files).map(([p, b64]) => [p, Buffer.from(b64, 'base64')]));
  const entries: ManifestEntry[] = [
    { type: 'symlink', path: 'latest', target: 'data/\u{1d711}.txt' },
    { type: 'dir', path: 'données', mode: 0o700 },
    { type: 'symlink', path: 'données/up', target: '../bin' },
    { type: 'dir', path: 'bin', mode: 0o755 },
    { type: 'dir', path: 'data', mode: 0o750 },
    ...Object.entries(sizes).map(([p, b]): ManifestEntry => ({
      type: 'file', path: p, size: b.length, sha256: sha256Hex(b),
      mode: ({ README: 0o644, 'bin/phi': 0o755, 'data/say "hi".txt': 0o644, 'data/\uff21.txt': 0o640, 'data/\u{1d711}.txt': 0o600 } as Record<string, number>)[p]!,
    })),
  ];
  const m = buildManifest({ vaultId: 'phi-engine', version: 7, created: new Date('2026-01-02T03:04:05.678Z'), expires: new Date('2099-12-31T23:59:59.999Z'), entries });
  // U+FF21 sorts before U+1D711 (code point / UTF-8 order), although its UTF-16 code unit is larger.
  assert.deepEqual(m.entries.map((e) => e.path).slice(5, 7), ['data/\uff21.txt', 'data/\u{1d711}.txt']);
  assert.deepEqual(encodeManifest(m), fixture);
  const parsed = parseManifest(fixture);
  assert.deepEqual(parsed, m);
});

test('round trip: parse(encode(m)) deep-equals m and re-encodes identically', () => {
  const m = makeManifest();
  const bytes = encodeManifest(m);
  assert.deepEqual(parseManifest(bytes), m);
  assert.deepEqual(encodeManifest(parseManifest(bytes)), bytes);
});

test('non-canonical JSON is rejected: whitespace, key order, float, escapes, trailing newline, BOM, duplicate key', () => {
  const bytes = encodeManifest(makeManifest());
  const text = new TextDecoder().decode(bytes);
  const variants: [string, Uint8Array][] = [
    ['space after colon', replaceText(bytes, '"version":1', '"version": 1')],
    ['leading whitespace', utf8(` ${text}`)],
    ['trailing newline', utf8(`${text}\n`)],
    ['pretty printed', utf8(JSON.stringify(JSON.parse(text), null, 2))],
    ['key order', utf8(text.replace('{"created":', '{"format":"omnimind-sentinel/manifest/v1","created":').replace(',"format":"omnimind-sentinel/manifest/v1"', ''))],
    ['float 1.0', replaceText(bytes, '"version":1', '"version":1.0')],
    ['exponent', replaceText(bytes, '"version":1', '"version":1e0')],
    ['escaped slash', replaceText(bytes, '"phi/engine.py"', '"phi\\/engine.py"')],
    ['unicode escape', replaceText(bytes, '"phi-engine"', '"phi\\u002dengine"')],
    ['BOM', new Uint8Array([0xef, 0xbb, 0xbf, ...bytes])],
    ['duplicate key', replaceText(bytes, '"version":1', '"version":2,"version":1')],
  ];
  for (const [name, v] of variants) {
    assert.notDeepEqual(v, bytes, name);
    throwsCode(() => parseManifest(v), 'malformed-bundle');
  }
  assert.ok(text.includes('"mode":420'));
});

test('numbers only as String(n) writes them: no leading zero, no plus sign, no -0', () => {
  const bytes = encodeManifest(manifestWith([file('a', { mode: 0o644, size: 0 })]));
  // -0 is valid JSON and passes every value rule (-0 >= 0): only the canonical form refuses it.
  throwsCode(() => parseManifest(replaceText(bytes, '"size":0', '"size":-0')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, '"size":0', '"size":00')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, '"mode":420', '"mode":0420')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, '"version":1', '"version":+1')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, '"version":1', '"version":9007199254740993')), 'malformed-bundle', 'manifest.version');
  assert.equal(parseManifest(replaceText(bytes, '"version":1', '"version":9007199254740991')).version, Number.MAX_SAFE_INTEGER);
});

test('strings: \\" and \\\\ are the only escapes a canonical manifest holds; a raw control character is not JSON', () => {
  const m = manifestWith([link('q"uote', 'back\\slash"and quote'), file('say "hi".txt')]);
  const bytes = encodeManifest(m);
  assert.ok(new TextDecoder().decode(bytes).includes('"back\\\\slash\\"and quote"'));
  assert.deepEqual(parseManifest(bytes), m);
  throwsCode(() => parseManifest(replaceText(bytes, 'quote"', 'quote\\u0022"')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, 'say \\"hi', 'say \\u0022hi')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, 'and quote', 'and\tquote')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(replaceText(bytes, 'and quote', 'and\u0001quote')), 'malformed-bundle', 'manifest');
});

test('a non-integer or out-of-range number is rejected naming the field', () => {
  throwsCode(() => parseJson({ ...makeManifest(), version: 1.5 }), 'malformed-bundle', 'manifest.version');
  throwsCode(() => parseJson({ ...makeManifest(), version: 0 }), 'malformed-bundle', 'manifest.version');
  throwsCode(() => parseJson({ ...makeManifest(), version: 2 ** 53 }), 'malformed-bundle', 'manifest.version');
  throwsCode(() => parseJson(manifestWith([file('a', { size: -1 })])), 'malformed-bundle', /size/);
  throwsCode(() => parseJson(manifestWith([file('a', { size: 0.5 })])), 'malformed-bundle', /size/);
});

test('invalid UTF-8 and invalid JSON are malformed-bundle', () => {
  throwsCode(() => parseManifest(new Uint8Array([0x7b, 0xc3, 0x28, 0x7d])), 'malformed-bundle');
  throwsCode(() => parseManifest(new Uint8Array([0x7b, 0xed, 0xa0, 0x80, 0x7d])), 'malformed-bundle'); // UTF-8 surrogate
  throwsCode(() => parseManifest(new Uint8Array([0x7b, 0xc0, 0xaf, 0x7d])), 'malformed-bundle'); // overlong '/'
  throwsCode(() => parseManifest(utf8('{"created":')), 'malformed-bundle');
  throwsCode(() => parseManifest(utf8('[]')), 'malformed-bundle', 'manifest');
  throwsCode(() => parseManifest(utf8('[['.repeat(100000))), 'malformed-bundle');
});

test('unknown and missing fields are rejected naming the field', () => {
  throwsCode(() => parseJson({ ...makeManifest(), extra: 1 }), 'malformed-bundle', 'manifest.extra');
  throwsCode(() => parseManifest(utf8('{"__proto__":{},' + new TextDecoder().decode(encodeManifest(makeManifest())).slice(1))), 'malformed-bundle', 'manifest.__proto__');
  const { expires: _e, ...noExpiry } = makeManifest();
  throwsCode(() => parseJson(noExpiry), 'malformed-bundle', 'manifest.expires');
  throwsCode(() => parseJson(manifestWith([{ ...file('a'), owner: 'root' } as unknown as ManifestEntry])), 'malformed-bundle', 'manifest.entries[0].owner');
  const { sha256: _s, ...noHash } = file('a') as { sha256: string };
  throwsCode(() => parseJson(manifestWith([noHash as unknown as ManifestEntry])), 'malformed-bundle', 'manifest.entries[0].sha256');
  throwsCode(() => parseJson({ ...makeManifest(), format: 'omnimind-sentinel/manifest/v2' }), 'malformed-bundle', 'manifest.format');
});

test('every bad field is named in one error', () => {
  try {
    parseJson({ ...makeManifest(), vaultId: 'Bad Id', version: -1, extra: true });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof Error);
    for (const f of ['manifest.vaultId', 'manifest.version', 'manifest.extra']) assert.ok(e.message.includes(f), `${f} not named in: ${e.message}`);
  }
});

test('vault id, times and expiry order are validated', () => {
  for (const id of ['', 'A', '-x', 'a'.repeat(65), 'a/b', 'a b']) throwsCode(() => parseJson({ ...makeManifest(), vaultId: id }), 'malformed-bundle', 'manifest.vaultId');
  for (const t of ['2026-01-01T00:00:00Z', '2026-01-01 00:00:00.000Z', '2026-02-30T00:00:00.000Z', '2026-01-01T00:00:00.000+00:00', 1767225600000]) {
    throwsCode(() => parseJson({ ...makeManifest(), created: t }), 'malformed-bundle', 'manifest.created');
  }
  throwsCode(() => parseJson({ ...makeManifest(), expires: T0.toISOString() }), 'malformed-bundle', 'manifest.expires');
  throwsCode(() => buildManifest({ vaultId: 'v', version: 1, created: new Date(Number.NaN), expires: ONE_YEAR_LATER, entries: [] }), 'usage', 'created');
});

test('limits: too many entries, file too large, payload too large, manifest too large (before parsing)', () => {
  const L = { ...DEFAULT_LIMITS, maxEntries: 2, maxFileBytes: 10, maxTotalBytes: 15 };
  const bytes = (entries: ManifestEntry[]): Uint8Array => encodeManifest(manifestWith(entries));
  throwsCode(() => parseManifest(bytes([file('a'), file('b'), file('c')]), L), 'too-large', 'manifest.entries');
  throwsCode(() => parseManifest(bytes([file('a', { size: 11 })]), L), 'too-large', /size/);
  throwsCode(() => parseManifest(bytes([file('a', { size: 8 }), file('b', { size: 8 })]), L), 'too-large', 'manifest.entries');
  parseManifest(bytes([file('a', { size: 10 }), file('b', { size: 5 })]), L);
  const big = bytes([file('a')]);
  throwsCode(() => parseManifest(big, { ...DEFAULT_LIMITS, maxManifestBytes: big.length - 1 }), 'too-large', 'manifest');
  // Not even valid UTF-8 or JSON: the size check comes first.
  throwsCode(() => parseManifest(new Uint8Array(101).fill(0xff), { ...DEFAULT_LIMITS, maxManifestBytes: 100 }), 'too-large');
});

test('payloadLayout: files in manifest order, offsets from sizes, dirs and symlinks take no bytes', () => {
  const m = manifestWith([
    file('a', { size: 3 }),
    { type: 'dir', path: 'b', mode: 0o755 },
    file('b/x', { size: 0 }),
    file('b/y', { size: 7 }),
    link('c', 'a'),
    file('d', { size: 1 }),
  ]);
  const layout = payloadLayout(m);
  assert.deepEqual(layout.files.map((f) => [f.entry.path, f.offset]), [['a', 0], ['b/x', 3], ['b/y', 3], ['d', 10]]);
  assert.equal(layout.totalBytes, 11);
  assert.deepEqual(payloadLayout(manifestWith([])), { files: [], totalBytes: 0 });
});
