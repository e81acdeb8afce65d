// A signal to a process named by PID and start time (adapters/signal-process.ts): through the addon's
// pidfd (native/src/pidfd-signal.c) and through the /proc fallback, the same three answers for real
// processes: sent to the one named, nothing sent to a process holding the PID with another start time,
// 'gone' for a process exited and reaped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:os';
import { procIdentity, type ProcIdentity } from '../../src/adapters/proc.js';
import { loadNative } from '../../src/adapters/native.js';
import { signalIdentified, signalIdentifiedByProc, type SignalOutcome } from '../../src/adapters/signal-process.js';
import { needs } from '../helpers/env.js';

async function sleeper(): Promise<{ child: ChildProcess; id: ProcIdentity }> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  await once(child, 'spawn');
  const id = await procIdentity(child.pid!);
  assert.ok(id !== null);
  return { child, id };
}

async function endedBy(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.signalCode;
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return signal;
}

const ways: [string, (id: ProcIdentity, s: NodeJS.Signals) => Promise<SignalOutcome>][] = [
  ['signalIdentified', signalIdentified],
  ['signalIdentifiedByProc', signalIdentifiedByProc],
];

for (const [name, signal] of ways) {
  test(`${name}: sent to the process named, nothing to another holding the PID, gone once reaped`, async () => {
    const a = await sleeper();
    try {
      assert.equal(await signal({ pid: a.id.pid, startTicks: a.id.startTicks - 1 }, 'SIGKILL'), 'other');
      assert.equal(await signal(a.id, 'SIGTERM'), 'sent');
      assert.equal(await endedBy(a.child), 'SIGTERM', 'the SIGKILL to the other start time was not sent');
      assert.equal(await signal(a.id, 'SIGKILL'), 'gone');
    } finally {
      a.child.kill('SIGKILL');
    }
  });
}

test('the addon signals through a pidfd (signalIdentified) and checks its arguments', async (t) => {
  const addon = loadNative();
  if (needs(t, addon !== null, 'the native addon (npm run install)')) return;
  assert.equal(typeof addon?.signalIdentified, 'function', 'the addon exports signalIdentified');
  const call = addon!.signalIdentified!.bind(addon);
  for (const args of [[0, 1, 9], [-1, 1, 9], [2 ** 31, 1, 9], [1.5, 1, 9], [1, -1, 9], [1, 0.5, 9], [1, 1, 65]]) {
    assert.throws(() => call(args[0]!, args[1]!, args[2]!), RangeError, args.join(' '));
  }
  const a = await sleeper();
  try {
    assert.equal(call(a.id.pid, a.id.startTicks + 1, constants.signals.SIGKILL), 'other');
    assert.equal(call(a.id.pid, a.id.startTicks, constants.signals.SIGTERM), 'sent');
    assert.equal(await endedBy(a.child), 'SIGTERM');
  } finally {
    a.child.kill('SIGKILL');
  }
});
