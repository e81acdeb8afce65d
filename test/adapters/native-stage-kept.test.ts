// The addon's staging pass with a kept copy (stageFilesKeptAtAsync, native/src/stage.c): every chunk
// it hashes is also written at its bundle offset into the kept file, so the copy is the hashed bytes;
// a failed write there is reported as the kept copy's, not the staged file's.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { hasNativeKeptStaging, stageFilesNative } from '../../src/adapters/native.js';
import { needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

after(() => removeTempDirs());

/** A head of `head` bytes followed by the bodies, and where each body lies in it. */
function bundleOf(dir: string, head: number, bodies: Buffer[]): { path: string; bytes: Buffer; items: { dest: string; offset: number; size: number; mode: number }[] } {
  const bytes = Buffer.concat([randomBytes(head), ...bodies]);
  const path = join(dir, 'bundle');
  writeFileSync(path, bytes);
  let offset = head;
  const items = bodies.map((b, i) => {
    const it = { dest: `f${i}`, offset, size: b.length, mode: 0o640 };
    offset += b.length;
    return it;
  });
  return { path, bytes, items };
}

describe('stageFilesKeptAtAsync', () => {
  test('the kept file ends up byte for byte the bundle: head as written by the caller, payload from the hashed chunks', async (t) => {
    if (needs(t, hasNativeKeptStaging(), 'native addon with stageFilesKeptAtAsync (npm run install)')) return;
    const dir = makeTempDir('stage-kept', shm);
    const bodies = [Buffer.alloc(0), randomBytes(4 * 1024 * 1024 + 5), randomBytes(1), Buffer.alloc(0), randomBytes(70_000)];
    const b = bundleOf(dir, 333, bodies);
    mkdirSync(join(dir, 'tree'));
    const root = openSync(join(dir, 'tree'), constants.O_RDONLY | constants.O_DIRECTORY);
    const src = openSync(b.path, 'r');
    const kept = openSync(join(dir, 'kept'), 'wx');
    try {
      writeSync(kept, b.bytes, 0, 333, 0);
      const results = await stageFilesNative(src, b.items, 3, root, kept);
      assert.ok(results !== null);
      results.forEach((r, i) => assert.deepEqual(r, { ok: true, written: bodies[i]!.length, sha256: sha(bodies[i]!) }));
    } finally {
      for (const fd of [root, src, kept]) closeSync(fd);
    }
    assert.deepEqual(readFileSync(join(dir, 'kept')), b.bytes);
    bodies.forEach((body, i) => assert.deepEqual(readFileSync(join(dir, 'tree', `f${i}`)), body));
  });

  test('a kept file that cannot be written: the error is marked as the kept copy\'s', async (t) => {
    if (needs(t, hasNativeKeptStaging(), 'native addon with stageFilesKeptAtAsync (npm run install)')) return;
    const dir = makeTempDir('stage-kept-fail', shm);
    const b = bundleOf(dir, 16, [randomBytes(1000)]);
    mkdirSync(join(dir, 'tree'));
    writeFileSync(join(dir, 'kept'), '');
    const root = openSync(join(dir, 'tree'), constants.O_RDONLY | constants.O_DIRECTORY);
    const src = openSync(b.path, 'r');
    // Opened read-only: every write into it fails with EBADF.
    const kept = openSync(join(dir, 'kept'), 'r');
    try {
      const results = await stageFilesNative(src, b.items, 1, root, kept);
      assert.deepEqual(results, [{ ok: false, errno: 'EBADF', kept: true }]);
    } finally {
      for (const fd of [root, src, kept]) closeSync(fd);
    }
  });
});
