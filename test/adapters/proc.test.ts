// /proc as the sentinel reads it, against the real /proc: the one stat parser, process identity
// (PID + start time), the process table, pid files, and the poll that reports a dead process once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseProcStat, procIdentity, processTable, readPidFile, readProcState, isSameProcessAlive, ProcPoller } from '../../src/adapters/proc.js';
import { isSentinelError } from '../../src/core/errors.js';

// A whole /proc/PID/stat line up to field 22 (starttime), with a comm holding spaces and parentheses.
const STAT = '123 (a b) c)) S 77 123 456 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 12345678 300';

test('/proc/PID/stat parsing survives a comm with spaces and parentheses', () => {
  assert.deepEqual(parseProcStat(STAT), { comm: 'a b) c)', state: 'S', ppid: 77, pgrp: 123, session: 456, startTicks: 987654 });
  assert.equal(parseProcStat('garbage'), null);
  assert.equal(parseProcStat('123 (a b) c)) S 77 123 123 0 -1'), null, 'a line without the start time is refused, not guessed');
});

test('process identity: the start time read from /proc matches the table, and survives only the same process', async () => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    const id = await procIdentity(child.pid!);
    assert.ok(id !== null);
    assert.equal(id.pid, child.pid);
    const entry = (await processTable()).get(child.pid!);
    assert.equal(entry?.startTicks, id.startTicks);
    assert.equal(entry?.comm, 'sleep');
    assert.equal(await isSameProcessAlive(id), true);
    assert.equal(await isSameProcessAlive({ pid: id.pid, startTicks: id.startTicks + 1 }), false, 'another start time is another process');
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  assert.equal((await readProcState(child.pid!)).alive, false);
});

test('pid files: one positive integer or a clear error', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-pidfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'x.pid');
  await writeFile(f, `${process.pid}\n`);
  assert.equal(await readPidFile(f), process.pid);
  for (const bad of ['', 'abc', '-1', '0', '12 13', '99999999999']) {
    await writeFile(f, bad);
    await assert.rejects(readPidFile(f), (e: unknown) => isSentinelError(e, 'config'), `refused ${JSON.stringify(bad)}`);
  }
  await assert.rejects(readPidFile(join(dir, 'missing.pid')), (e: unknown) => isSentinelError(e, 'not-found'));
});

test('/proc poller reports a killed process once', async () => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const id = await procIdentity(child.pid!);
  assert.ok(id !== null);
  const seen: number[] = [];
  const gone = new Promise<void>((resolve) => {
    const poller = new ProcPoller(5, (pid) => {
      seen.push(pid);
      poller.stop();
      resolve();
    });
    poller.watch(id);
  });
  child.kill('SIGKILL');
  await gone;
  assert.deepEqual(seen, [child.pid]);
});

