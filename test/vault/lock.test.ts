// The vault lock: exclusive between holders, `busy` after the timeout, and a lock left by a dead
// process (or a half-written one) is recognised as stale and taken over, which signals recovery.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isSentinelError } from '../../src/core/errors.js';
import { acquireLock } from '../../src/vault/lock.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(cleanupAll);

test('one holder at a time; busy after the timeout; released lock is free again', async () => {
  const path = join(tempDir('lock'), '.lock');
  const a = await acquireLock(path, { timeoutMs: 0 });
  assert.equal(a.staleTakeover, false);
  assert.match(readFileSync(path, 'utf8'), new RegExp(`^${process.pid} `));
  await assert.rejects(acquireLock(path, { timeoutMs: 0 }), (e) => isSentinelError(e, 'busy'));
  await assert.rejects(acquireLock(path, { timeoutMs: 120, pollMs: 10 }), (e) => isSentinelError(e, 'busy'));
  const waiting = acquireLock(path, { timeoutMs: 10_000, pollMs: 5 });
  await a.release();
  const b = await waiting;
  assert.equal(b.staleTakeover, false);
  await b.release();
  assert.equal(existsSync(path), false);
});

test('a lock left by a dead process or half-written is stale and taken over', async () => {
  const dir = tempDir('lock-stale');
  const path = join(dir, '.lock');
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  await new Promise((r) => child.on('exit', r));
  writeFileSync(path, `${pid} 12345\n`);
  const a = await acquireLock(path, { timeoutMs: 0 });
  assert.equal(a.staleTakeover, true);
  await a.release();
  writeFileSync(path, '');
  const b = await acquireLock(path, { timeoutMs: 0 });
  assert.equal(b.staleTakeover, true);
  await b.release();
  // A live process whose start time differs (pid reused) does not hold the lock either.
  writeFileSync(path, `${process.pid} 1\n`);
  const c = await acquireLock(path, { timeoutMs: 0 });
  assert.equal(c.staleTakeover, true);
  await c.release();
});
