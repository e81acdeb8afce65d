// The fast kill of a target's process (killNow: a hung pid-file or unit process, a target given up)
// names the process by PID and start time. A PID that names another process by the time of the kill
// (the one decided on exited and the PID was reused) is never signalled; a process already gone is no
// error. Real processes; whether one was SIGKILLed is read from how it ended, not from a delay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { procIdentity } from '../../../src/adapters/proc.js';
import { killNow } from '../../../src/daemon/targets/launcher.js';

async function sleeper(): Promise<{ child: ChildProcess; pid: number; startTicks: number }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const id = await procIdentity(child.pid!);
  assert.ok(id !== null, 'the sleeper runs');
  return { child, ...id };
}

/** How the child ended: the signal that ended it. */
async function endedBy(child: ChildProcess): Promise<NodeJS.Signals | null> {
  const [, signal] = (child.exitCode !== null || child.signalCode !== null ? [child.exitCode, child.signalCode] : await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return signal;
}

test('killNow kills the process its identity names', async () => {
  const s = await sleeper();
  try {
    await killNow({ pid: s.pid, startTicks: s.startTicks }, null);
    assert.equal(await endedBy(s.child), 'SIGKILL');
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('killNow leaves alone a process that has the PID but another start time (the PID reused since the decision)', async () => {
  const s = await sleeper();
  try {
    // The process decided on had this PID and started earlier; the one holding it now is another.
    await killNow({ pid: s.pid, startTicks: s.startTicks - 1 }, null);
    s.child.kill('SIGTERM');
    assert.equal(await endedBy(s.child), 'SIGTERM', 'the newcomer was not SIGKILLed: it ended by the SIGTERM sent after');
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('killNow of a process that is gone (exited and reaped) is no error', async () => {
  const s = await sleeper();
  s.child.kill('SIGTERM');
  assert.equal(await endedBy(s.child), 'SIGTERM');
  await killNow({ pid: s.pid, startTicks: s.startTicks }, null);
});

test('killNow of a thread id (a pid file may name one) ends its process, as kill(2) of it does', async () => {
  // A process with a second thread: its id is a PID no process leads.
  const child = spawn('python3', ['-c', 'import threading, time\nthreading.Thread(target=time.sleep, args=(600,), daemon=True).start()\nprint("ready", flush=True)\ntime.sleep(600)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await once(child.stdout, 'data');
    const tids = readdirSync(`/proc/${String(child.pid)}/task`).map(Number).filter((t) => t !== child.pid);
    assert.ok(tids.length > 0, 'the child has a second thread');
    const id = await procIdentity(tids[0]!);
    assert.ok(id !== null, 'the thread id reads as a process in /proc');
    await killNow(id, null);
    assert.equal(await endedBy(child), 'SIGKILL');
  } finally {
    child.kill('SIGKILL');
  }
});
