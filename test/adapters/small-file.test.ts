// The small-file reader answers the same whether it reads through the thread pool (every process
// but the plain `vault status`) or blocking (that runner, src/cli/plain-status.ts): the same bytes,
// prefix included, and the same refusal, code and message for a fifo, a directory, a symlink not
// followed, a file too large, a missing file; the same names and link target too.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readLinkTarget, readNames, readSmallFileBytes, setBlockingReads } from '../../src/adapters/small-file.js';
import type { SmallFileOptions } from '../../src/adapters/small-file.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => {
  setBlockingReads(false);
  cleanupAll();
});

type Answer = { bytes: string } | { code: string; message: string; where: string };

async function answer(read: () => Promise<Buffer | string | string[]>): Promise<Answer> {
  try {
    const v = await read();
    return { bytes: Buffer.isBuffer(v) ? v.toString('hex') : JSON.stringify(v) };
  } catch (e) {
    const err = e as { code?: string; message: string; where?: string };
    return { code: String(err.code), message: err.message, where: String(err.where) };
  }
}

/** The answer through the pool and blocking; both must be the same. */
async function bothWays(read: () => Promise<Buffer | string | string[]>, what: string): Promise<Answer> {
  setBlockingReads(false);
  const pool = await answer(read);
  setBlockingReads(true);
  try {
    assert.deepEqual(await answer(read), pool, what);
  } finally {
    setBlockingReads(false);
  }
  return pool;
}

test('readSmallFileBytes, readNames and readLinkTarget answer the same through the pool and blocking', async () => {
  const dir = tempDir('small-file');
  writeFileSync(join(dir, 'ok.json'), '{"a":1}\n');
  writeFileSync(join(dir, 'big.json'), 'x'.repeat(100));
  writeFileSync(join(dir, 'empty'), '');
  mkdirSync(join(dir, 'sub'));
  symlinkSync('ok.json', join(dir, 'link'));
  assert.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0, 'mkfifo');
  const opts: SmallFileOptions = { what: 'thing.json', maxBytes: 64, badFileCode: 'tampered', noFollow: true };
  const read = (name: string, o: SmallFileOptions = opts) => () => readSmallFileBytes(join(dir, name), o);

  assert.deepEqual(await bothWays(read('ok.json'), 'a small file'), { bytes: Buffer.from('{"a":1}\n').toString('hex') });
  assert.deepEqual(await bothWays(read('ok.json', { ...opts, prefix: new Uint8Array([1, 2]) }), 'with a prefix'), { bytes: Buffer.from('{"a":1}\n').toString('hex') });
  assert.deepEqual(await bothWays(read('empty'), 'an empty file'), { bytes: '' });
  const refused: [string, RegExp][] = [
    ['big.json', /is 100 bytes, more than the 64/],
    ['sub', /is a directory, not a regular file/],
    ['fifo', /is a fifo, not a regular file/],
    ['link', /is a symlink, not a regular file \(not followed\)/],
    ['missing', /cannot open thing\.json/],
  ];
  for (const [name, message] of refused) {
    const a = await bothWays(read(name), name);
    assert.ok('message' in a && message.test(a.message), `${name}: ${JSON.stringify(a)}`);
  }
  // A symlink an operator names is followed both ways.
  assert.deepEqual(await bothWays(read('link', { what: 'key', maxBytes: 64 }), 'a followed symlink'), { bytes: Buffer.from('{"a":1}\n').toString('hex') });

  const names = await bothWays(async () => (await readNames(dir)).sort(), 'the names');
  assert.deepEqual(names, { bytes: JSON.stringify(['big.json', 'empty', 'fifo', 'link', 'ok.json', 'sub']) });
  assert.deepEqual(await bothWays(() => readLinkTarget(join(dir, 'link')), 'a link target'), { bytes: JSON.stringify('ok.json') });
  for (const [what, f] of [['names of a file', () => readNames(join(dir, 'ok.json'))], ['target of a file', () => readLinkTarget(join(dir, 'ok.json'))], ['target of nothing', () => readLinkTarget(join(dir, 'missing'))]] as const) {
    const a = await bothWays(f, what);
    assert.ok('code' in a, `${what} is refused: ${JSON.stringify(a)}`);
  }
});
