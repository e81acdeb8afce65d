// HashPool and sha256File against coreutils' sha256sum on real files: empty, small, larger than
// the read buffer; progress; errors that name the path; a pool reused across calls.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rejection } from '../helpers/core-factory.js';
import { HASH_BUFFER_BYTES, HashPool, sha256File } from '../../src/adapters/hash.js';

let dir = '';
const files: string[] = [];
let expected = new Map<string, string>();

function sha256sum(paths: string[]): Map<string, string> {
  const r = spawnSync('sha256sum', ['--', ...paths], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  const out = new Map<string, string>();
  for (const line of r.stdout.trim().split('\n')) {
    const [digest, ...rest] = line.split('  ');
    out.set(rest.join('  '), digest ?? '');
  }
  return out;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sentinel-hash-'));
  const sizes = [0, 1, 55, 56, 64, 4095, 4096, 9000, HASH_BUFFER_BYTES - 1, HASH_BUFFER_BYTES, HASH_BUFFER_BYTES + 1, 3 * HASH_BUFFER_BYTES + 12345];
  for (const [i, size] of sizes.entries()) {
    const p = join(dir, `sized-${i}-${size}`);
    writeFileSync(p, randomBytes(size));
    files.push(p);
  }
  mkdirSync(join(dir, 'many'));
  for (let i = 0; i < 600; i++) {
    const p = join(dir, 'many', `f${i}`);
    writeFileSync(p, randomBytes(Math.floor(Math.random() * 20_000)));
    files.push(p);
  }
  expected = sha256sum(files);
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('HashPool', () => {
  test('matches sha256sum on every file, in input order, with sizes', async () => {
    const pool = new HashPool(2);
    try {
      const results = await pool.hashFiles(files);
      assert.equal(results.length, files.length);
      for (const [i, r] of results.entries()) {
        assert.equal(r.path, files[i]);
        assert.equal(r.sha256, expected.get(r.path), r.path);
      }
      assert.equal(results[0]!.size, 0);
      assert.equal(results[0]!.sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
      assert.equal(results[11]!.size, 3 * HASH_BUFFER_BYTES + 12345);
    } finally {
      await pool.close();
    }
  });

  test('reports progress monotonically up to the totals; pool reused across calls', async () => {
    const pool = new HashPool(3);
    try {
      const seen: [number, number][] = [];
      const results = await pool.hashFiles(files, (bytes, n) => seen.push([bytes, n]));
      const totalBytes = results.reduce((s, r) => s + r.size, 0);
      assert.ok(seen.length > 0);
      for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i]![0] >= seen[i - 1]![0] && seen[i]![1] > seen[i - 1]![1], 'progress only moves forward');
      }
      assert.deepEqual(seen.at(-1), [totalBytes, files.length]);
      const again = await Promise.all([pool.hashFiles(files.slice(0, 5)), pool.hashFiles(files.slice(5, 9))]);
      assert.deepEqual(again.flat().map((r) => r.sha256), files.slice(0, 9).map((f) => expected.get(f)));
      assert.deepEqual(await pool.hashFiles([]), []);
    } finally {
      await pool.close();
    }
  });

  test('a missing file fails with not-found naming it; the pool keeps working', async () => {
    const pool = new HashPool(2);
    try {
      const missing = join(dir, 'does-not-exist');
      const r = await rejection(pool.hashFiles([...files.slice(0, 50), missing, ...files.slice(50, 100)]));
      assert.deepEqual(r, { code: 'not-found', where: missing });
      const ok = await pool.hashFiles(files.slice(0, 3));
      assert.equal(ok[2]!.sha256, expected.get(files[2]!));
    } finally {
      await pool.close();
    }
  });

  test('symlinks and special files are refused, not followed', async () => {
    const pool = new HashPool(1);
    try {
      const link = join(dir, 'link');
      symlinkSync(files[3]!, link);
      assert.deepEqual(await rejection(pool.hashFiles([link])), { code: 'bad-path', where: link });
      assert.deepEqual(await rejection(pool.hashFiles([dir])), { code: 'bad-path', where: dir });
      assert.deepEqual(await rejection(pool.hashFiles(['/dev/zero'])), { code: 'bad-path', where: '/dev/zero' });
    } finally {
      await pool.close();
    }
  });

  test('with sizes: largest files first, results still in input order', async () => {
    const pool = new HashPool(2);
    try {
      const sizes = files.map((f) => statSync(f).size);
      const results = await pool.hashFiles(files, undefined, { sizes });
      assert.deepEqual(results.map((r) => r.path), files);
      assert.deepEqual(results.map((r) => r.sha256), files.map((f) => expected.get(f)));
      assert.deepEqual(results.map((r) => r.size), sizes);
      await assert.rejects(pool.hashFiles(files, undefined, { sizes: [1] }), { code: 'internal' });
    } finally {
      await pool.close();
    }
  });

  test('a 4 KiB buffer gives the same digests (many reads per file)', async () => {
    const pool = new HashPool(2, { bufferBytes: 4096 });
    try {
      const results = await pool.hashFiles(files.slice(0, 12));
      assert.deepEqual(results.map((r) => r.sha256), files.slice(0, 12).map((f) => expected.get(f)));
    } finally {
      await pool.close();
    }
  });

  test('rejects a bad worker count or buffer size', () => {
    assert.throws(() => new HashPool(0), { code: 'usage' });
    assert.throws(() => new HashPool(1.5), { code: 'usage' });
    assert.throws(() => new HashPool(1, { bufferBytes: 100 }), { code: 'usage', where: 'bufferBytes' });
  });
});

describe('sha256File', () => {
  test('matches sha256sum for empty, small and multi-buffer files', async () => {
    for (const f of files.slice(0, 12)) {
      const r = await sha256File(f);
      assert.equal(r.sha256, expected.get(f), f);
      assert.equal(r.path, f);
    }
  });

  test('errors name the path', async () => {
    const missing = join(dir, 'nope');
    assert.deepEqual(await rejection(sha256File(missing)), { code: 'not-found', where: missing });
    assert.deepEqual(await rejection(sha256File(dir)), { code: 'bad-path', where: dir });
  });
});
