// The hand-over of the CLI's early tree reading to verify (src/vault/early-reading.ts): taken only
// for the very tree and size limit verify reads; another tree's reading is dropped with its lock;
// the taken reading drops the lock when verify abandons it; openVault sees the lock as ours only
// for the lock file it was taken on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TreeReading } from '../../src/adapters/tree-inspector.js';
import { dropEarlyReading, earlyLockHeld, offerEarlyReading, takeEarlyReading } from '../../src/vault/early-reading.js';

function fake(): { reading: TreeReading; events: string[]; release: () => void } {
  const events: string[] = [];
  const reading: TreeReading = {
    finish: () => Promise.reject(new Error('not used')),
    check: () => Promise.resolve({ problems: [], checkedFiles: 1, checkedBytes: 2 }),
    abandon: () => {
      events.push('abandon');
      return Promise.resolve();
    },
  };
  return { reading, events, release: () => void events.push('release') };
}

test('taken for its own tree and limit only; abandon drops the lock', async () => {
  const f = fake();
  offerEarlyReading({ lock: '/v/staging/.lock', tree: '/v/releases/r1/tree', maxFileBytes: 10, reading: f.reading, release: f.release });
  assert.equal(earlyLockHeld('/w/staging/.lock'), false);
  assert.equal(earlyLockHeld('/v/staging/.lock'), true);
  const taken = takeEarlyReading('/v/releases/r1/tree', 10);
  assert.ok(taken !== null);
  assert.equal(earlyLockHeld('/v/staging/.lock'), false, 'taken once');
  assert.equal(takeEarlyReading('/v/releases/r1/tree', 10), null);
  assert.deepEqual(await taken.check([]), { problems: [], checkedFiles: 1, checkedBytes: 2 });
  assert.deepEqual(f.events, []);
  await taken.abandon();
  assert.deepEqual(f.events, ['abandon', 'release']);
});

test('another tree or another limit: dropped with its lock, verify reads itself', async () => {
  for (const [tree, max] of [['/v/releases/r2/tree', 10], ['/v/releases/r1/tree', 11]] as const) {
    const f = fake();
    offerEarlyReading({ lock: '/v/staging/.lock', tree: '/v/releases/r1/tree', maxFileBytes: 10, reading: f.reading, release: f.release });
    assert.equal(takeEarlyReading(tree, max), null);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(f.events, ['abandon', 'release']);
    assert.equal(earlyLockHeld('/v/staging/.lock'), false);
  }
});

test('dropped before recovery: abandoned, then its lock released', async () => {
  const f = fake();
  offerEarlyReading({ lock: '/v/staging/.lock', tree: '/t', maxFileBytes: 1, reading: f.reading, release: f.release });
  await dropEarlyReading();
  assert.deepEqual(f.events, ['abandon', 'release']);
  assert.equal(takeEarlyReading('/t', 1), null);
});
