// The manifest's symlink rules: no target may escape the release (directly, through .. or through
// other symlinks), no absolute or empty target, no loop; resolution work stays bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ManifestEntry } from '../../src/core/index.js';
import { throwsCode } from '../helpers/core-factory.js';
import { dirA, link, manifestWith, parseJson } from '../helpers/manifest-entries.js';

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
