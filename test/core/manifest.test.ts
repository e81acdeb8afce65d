// The manifest: canonical bytes against an independent (Python) encoding, and one test per rejection rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_LIMITS,
  MANIFEST_FORMAT,
  assertSafePath,
  buildManifest,
  encodeManifest,
  parseManifest,
  payloadLayout,
  type Manifest,
  type ManifestEntry,
} from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0, coreFixture, makeManifest, replaceText, sha256Hex, throwsCode, utf8 } from '../helpers/core-factory.js';

const H = sha256Hex('');

function manifestWith(entries: ManifestEntry[]): Manifest {
  return { format: MANIFEST_FORMAT, vaultId: 'phi-engine', version: 1, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries };
}

/** Parse a hand-made value as manifest bytes (the route untrusted input takes): sorted keys, no whitespace. */
function parseJson(v: unknown): Manifest {
  const sorted = (_k: string, x: unknown): unknown =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x;
  return parseManifest(utf8(JSON.stringify(v, sorted)));
}

function file(path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry {
  return { type: 'file', path, mode: 0o644, size: 0, sha256: H, ...extra } as ManifestEntry;
}

const dirA: ManifestEntry = { type: 'dir', path: 'a', mode: 0o755 };
const link = (path: string, target: string): ManifestEntry => ({ type: 'symlink', path, target });

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

const badPaths: [string, string][] = [
  ['', 'empty'],
  ['/etc/passwd', 'absolute'],
  ['../x', 'dot-dot first'],
  ['a/../../x', 'dot-dot inside'],
  ['a/..', 'dot-dot last'],
  ['./a', 'dot'],
  ['a/./b', 'dot inside'],
  ['a//b', 'empty component'],
  ['a/', 'trailing slash'],
  ['a\\b', 'backslash'],
  ['a\0b', 'NUL'],
  ['a\nb', 'newline'],
  ['a\u007fb', 'DEL'],
  ['a\ud800b', 'lone surrogate'],
  ['x'.repeat(256), 'component > NAME_MAX'],
  [Array.from({ length: 2100 }, () => 'ab').join('/'), 'path > PATH_MAX'],
];

for (const [p, what] of badPaths) {
  test(`path rule: ${what} is bad-path (assertSafePath and in a manifest)`, () => {
    throwsCode(() => assertSafePath(p), 'bad-path');
    throwsCode(() => encodeManifest(manifestWith([file(p)])), 'bad-path');
  });
}

test('path limits follow the configured limits', () => {
  assertSafePath('abcd', { ...DEFAULT_LIMITS, maxPathBytes: 4 });
  throwsCode(() => assertSafePath('abcde', { ...DEFAULT_LIMITS, maxPathBytes: 4 }), 'bad-path', 'abcde');
  throwsCode(() => assertSafePath('ééé', { ...DEFAULT_LIMITS, maxPathBytes: 5 }), 'bad-path'); // 6 UTF-8 bytes
  for (const ok of ['a', 'a/b', '.hidden', 'a..b', '...', 'é/φ', 'with space', 'x'.repeat(255)]) assertSafePath(ok);
});

test('a duplicate path is bad-path, also across types', () => {
  throwsCode(() => parseJson(manifestWith([file('a'), file('a')])), 'bad-path', /a/);
  throwsCode(() => parseJson(manifestWith([{ type: 'dir', path: 'a', mode: 0o755 }, file('a')])), 'bad-path', /duplicate/);
});

test('a duplicate path is found also when it is not next to its twin (entries out of order)', () => {
  throwsCode(() => parseJson(manifestWith([file('a'), file('b'), file('a')])), 'bad-path', /duplicate/);
  // Here the order problem comes first (entry 1), and the one error names both.
  throwsCode(() => parseJson(manifestWith([file('b'), file('a'), file('b')])), 'malformed-bundle', /not sorted.*entries\[2\] b: duplicate path/);
});

test('parents are found across siblings that sort between a directory and its children', () => {
  // ' ' (0x20), '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f): 'a b', 'a-c' and 'a.d' come between 'a' and 'a/x'.
  const ok = [dirA, file('a b'), file('a-c'), { type: 'dir', path: 'a.d', mode: 0o755 } as ManifestEntry, file('a.d/y'), file('a/x')];
  assert.equal(parseJson(manifestWith(ok)).entries.length, 6);
  throwsCode(() => parseJson(manifestWith([dirA, file('a b'), file('a b/x'), file('a/x')])), 'bad-path', /a b\/x/);
  throwsCode(() => parseJson(manifestWith([file('a b'), file('a-c'), file('a/x')])), 'bad-path', /not listed/);
});

test('entries out of path order are not canonical', () => {
  throwsCode(() => parseJson(manifestWith([file('b'), file('a')])), 'malformed-bundle', /sorted/);
  // Code point order: 'Z' (0x5a) < 'a' (0x61) < 'é' < U+FF21 < U+1D711.
  parseJson(manifestWith([file('Z'), file('a'), file('é'), file('\uff21'), file('\u{1d711}')]));
  throwsCode(() => parseJson(manifestWith([file('\u{1d711}'), file('\uff21')])), 'malformed-bundle', /sorted/);
});

test('setuid, setgid and sticky bits are bad-path; modes above 0o7777 or non-integers are malformed', () => {
  throwsCode(() => parseJson(manifestWith([file('a', { mode: 0o4755 })])), 'bad-path', /setuid/);
  throwsCode(() => parseJson(manifestWith([file('a', { mode: 0o2755 })])), 'bad-path', /setgid/);
  throwsCode(() => parseJson(manifestWith([{ type: 'dir', path: 'd', mode: 0o1777 }])), 'bad-path', /sticky/);
  throwsCode(() => parseJson(manifestWith([file('a', { mode: 0o10644 })])), 'malformed-bundle', /mode/);
  throwsCode(() => parseJson(manifestWith([file('a', { mode: -1 })])), 'malformed-bundle', /mode/);
  throwsCode(() => parseJson(manifestWith([file('a', { mode: '644' as unknown as number })])), 'malformed-bundle', /mode/);
  parseJson(manifestWith([file('a', { mode: 0o777 }), file('b', { mode: 0 })]));
});

test('devices, fifos, sockets and unknown entry types are bad-path naming the type', () => {
  for (const type of ['chardev', 'blockdev', 'fifo', 'socket', 'hardlink', 7]) {
    throwsCode(() => parseJson(manifestWith([{ type, path: 'dev', mode: 0o600 } as unknown as ManifestEntry])), 'bad-path', 'manifest.entries[0].type');
  }
});

test('sha256 must be 64 lowercase hex', () => {
  for (const h of [H.toUpperCase(), H.slice(1), `${H}0`, 'z'.repeat(64)]) throwsCode(() => parseJson(manifestWith([file('a', { sha256: h })])), 'malformed-bundle', /sha256/);
});

test('every parent must be a listed dir; nothing may pass through a symlink or a file', () => {
  throwsCode(() => parseJson(manifestWith([file('a/b')])), 'bad-path', /not listed/);
  throwsCode(() => parseJson(manifestWith([file('a'), file('a/b')])), 'bad-path', /not a directory/);
  throwsCode(() => parseJson(manifestWith([{ type: 'dir', path: 'd', mode: 0o755 }, { type: 'symlink', path: 'l', target: 'd' }, file('l/x')])), 'bad-path', /through a symlink/);
  throwsCode(() => parseJson(manifestWith([{ type: 'dir', path: 'a', mode: 0o755 }, file('a/b/c')])), 'bad-path', /a\/b/);
  parseJson(manifestWith([{ type: 'dir', path: 'a', mode: 0o755 }, { type: 'dir', path: 'a/b', mode: 0o755 }, file('a/b/c')]));
});


test('symlink escape: direct .. from the root', () => {
  throwsCode(() => parseJson(manifestWith([link('l', '..')])), 'bad-path', /escapes/);
  throwsCode(() => parseJson(manifestWith([link('l', '../etc/passwd')])), 'bad-path', /escapes/);
});

test('symlink escape: via .. deeper than its own directory', () => {
  throwsCode(() => parseJson(manifestWith([dirA, link('a/l', '../../x')])), 'bad-path', /escapes/);
  throwsCode(() => parseJson(manifestWith([dirA, link('a/l', 'b/../../../x')])), 'bad-path', /escapes/);
});

test('symlink escape: via another symlink', () => {
  // up -> .. is inside? No: it escapes itself. Use a chain whose each link alone stays inside.
  const entries = [dirA, { type: 'dir', path: 'a/b', mode: 0o755 } as ManifestEntry, link('a/b/up', '..'), link('l', 'a/b/up/../..')];
  throwsCode(() => parseJson(manifestWith(entries.sort((x, y) => (x.path < y.path ? -1 : 1)))), 'bad-path', /l target/);
  const viaRootLink = [dirA, link('a/root', '..'), link('z', 'a/root/..')];
  throwsCode(() => parseJson(manifestWith(viaRootLink)), 'bad-path', /z target/);
});

test('symlink: absolute target, empty target, loop', () => {
  throwsCode(() => parseJson(manifestWith([link('l', '/etc/passwd')])), 'bad-path', /absolute/);
  throwsCode(() => parseJson(manifestWith([link('l', '')])), 'bad-path', /non-empty/);
  throwsCode(() => parseJson(manifestWith([link('x', 'y'), link('y', 'x')])), 'bad-path', /too many levels/);
  throwsCode(() => parseJson(manifestWith([link('x', 'x/a')])), 'bad-path', /too many levels/);
});

test('symlink: inside the release is fine, also dangling, to the root itself, and through other symlinks', () => {
  const m = manifestWith([
    dirA,
    link('a/dangling', 'missing/file'),
    link('a/self', '.'),
    link('a/sibling', '../b'),
    { type: 'dir', path: 'b', mode: 0o755 },
    link('root', '.'),
    link('via', 'a/self/../b'),
  ]);
  assert.deepEqual(parseJson(m), m);
});

// A hang guard, not a timing assertion: exponential or quadratic resolution would blow the timeout by far.
test('symlink resolution work is bounded (a fan-out of chained links is cut at the symlink depth limit)', { timeout: 30_000 }, () => {
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < 60; i++) entries.push(link(`l${String(i).padStart(2, '0')}`, i === 59 ? '.' : `l${String(i + 1).padStart(2, '0')}/l${String(i + 1).padStart(2, '0')}`));
  throwsCode(() => parseJson(manifestWith(entries)), 'bad-path', /too many levels/);
});

test('symlink resolution is linear in the target length (thousands of 4 KB targets)', { timeout: 30_000 }, () => {
  const deep = Array.from({ length: 2000 }, () => 'a').join('/');
  const entries: ManifestEntry[] = [dirA];
  for (let i = 0; i < 3000; i++) entries.push(link(`a/l${String(i).padStart(4, '0')}`, i % 2 === 0 ? `../${deep}` : `${'x/'.repeat(800)}${'../'.repeat(800)}`));
  const m = manifestWith(entries);
  assert.equal(parseJson(m).entries.length, 3001);
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
