// The manifest's entry rules: path syntax and limits, duplicates, canonical order, listed parents,
// entry types, modes and hashes; one test per rejection rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, assertSafePath, encodeManifest, type ManifestEntry } from '../../src/core/index.js';
import { throwsCode } from '../helpers/core-factory.js';
import { H, dirA, file, manifestWith, parseJson } from '../helpers/manifest-entries.js';

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
