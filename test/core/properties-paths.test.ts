// Property-based tests of the path rules: random strings never crash the validator, accepted symlinks
// never resolve outside the release on the real filesystem, the plain-ASCII fast path agrees with the
// full rules, and path order is bytewise UTF-8 order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import fc from 'fast-check';
import { comparePaths, assertSafePath, buildManifest, isSentinelError, type ManifestEntry } from '../../src/core/index.js';
import { isPlainAsciiPath } from '../../src/core/manifest-rules.js';
import { DEFAULT_LIMITS } from '../../src/core/limits.js';
import { ONE_YEAR_LATER, T0 } from '../helpers/core-factory.js';
import { onlySentinelErrors, runs } from '../helpers/properties.js';

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
