// The process adapter against real child processes: supervised start, exit reporting, the one
// SIGTERM → grace → SIGKILL escalation, killing by PID, and commands run to completion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { killPid, runCommand, runRecoveryCommand, spawnSupervised, type ChildExit, type SupervisedChild } from '../../src/adapters/process.js';
import { readProcState } from '../../src/adapters/proc.js';
import { isSentinelError } from '../../src/core/errors.js';

/** Resolves with the first stdout line equal to `want` (the child says it is ready, or what it saw). */
function lineFrom(child: SupervisedChild, want: string): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (l === want) resolve();
    });
  });
}

test('a supervised child reports its exit status once, also to a subscriber who comes late', async () => {
  const child = await spawnSupervised(['sh', '-c', 'exit 7']);
  assert.ok(child.pid > 0);
  const first = await new Promise<ChildExit>((resolve) => child.onExit(resolve));
  assert.deepEqual(first, { exitCode: 7, signal: null });
  assert.equal(child.running, false);
  const late = await new Promise<ChildExit>((resolve) => child.onExit(resolve));
  assert.deepEqual(late, first);
  assert.deepEqual(await child.exited, first);
});

test('terminate: a child that honours SIGTERM ends with SIGTERM, no SIGKILL needed', async () => {
  const child = await spawnSupervised(['sleep', '60']);
  const exit = await child.terminate({ graceMs: 10_000 });
  assert.deepEqual(exit, { exitCode: null, signal: 'SIGTERM' });
  assert.equal((await readProcState(child.pid)).alive, false);
});

test('terminate: a child that ignores SIGTERM gets it first, then SIGKILL after the grace period', async () => {
  const child = await spawnSupervised(['sh', '-c', "trap 'echo term' TERM; echo ready; while :; do sleep 0.05; done"], { stdio: 'pipe' });
  await lineFrom(child, 'ready');
  const sawTerm = lineFrom(child, 'term');
  const exit = await child.terminate({ signal: 'SIGTERM', graceMs: 300 });
  await sawTerm;
  assert.equal(exit.signal, 'SIGKILL', 'escalated to SIGKILL');
  assert.equal(child.running, false);
  assert.equal((await readProcState(child.pid)).alive, false);
});

test('terminate: SIGINT as the first signal (how a tracer is asked to detach), and SIGKILL straight away', async () => {
  const polite = await spawnSupervised(['sleep', '60']);
  assert.equal((await polite.terminate({ signal: 'SIGINT', graceMs: 10_000 })).signal, 'SIGINT');
  const hard = await spawnSupervised(['sh', '-c', "trap '' TERM INT; exec sleep 60"]);
  assert.equal((await hard.terminate({ signal: 'SIGKILL', graceMs: 10_000 })).signal, 'SIGKILL');
});

test('terminate of a child that already exited returns its exit at once and signals nothing', async () => {
  const child = await spawnSupervised(['true']);
  await child.exited;
  assert.deepEqual(await child.terminate({ graceMs: 0 }), { exitCode: 0, signal: null });
});

test('a program that cannot be started is a coded error naming it, not a child', async (t) => {
  await assert.rejects(spawnSupervised(['/nonexistent/program'], { where: 'targets.x.command' }), (e: unknown) => isSentinelError(e, 'not-found') && e.where === 'targets.x.command' && /ENOENT/.test(e.message));
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-process-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const notExecutable = join(dir, 'script');
  await writeFile(notExecutable, '#!/bin/sh\nexit 0\n');
  await chmod(notExecutable, 0o644);
  await assert.rejects(spawnSupervised([notExecutable]), (e: unknown) => isSentinelError(e, 'not-permitted'));
  await assert.rejects(spawnSupervised([]), (e: unknown) => isSentinelError(e, 'config'));
});

test('killPid: a live process is killed; a PID that is already gone is no error', async () => {
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  const gone = once(other, 'exit');
  assert.equal(killPid(other.pid!), true);
  const [, signal] = (await gone) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
  assert.equal(killPid(other.pid!), false, 'already dead and reaped');
});

test('runCommand: output captured, a failure is a result not an exception, timeouts and missing programs named', async () => {
  const ok = await runCommand(['sh', '-c', 'echo out; echo err >&2'], { timeoutMs: 10_000 });
  assert.equal(ok.ok, true);
  assert.equal(ok.stdout, 'out');
  assert.equal(ok.stderr, 'err');
  const failed = await runCommand(['sh', '-c', 'exit 3'], { timeoutMs: 10_000 });
  assert.equal(failed.ok, false);
  assert.equal(failed.exitCode, 3);
  assert.equal(failed.startError, null);
  const slow = await runCommand(['sleep', '5'], { timeoutMs: 100 });
  assert.equal(slow.ok, false);
  assert.equal(slow.timedOut, true);
  const missing = await runCommand(['/nonexistent/program'], { timeoutMs: 10_000 });
  assert.equal(missing.ok, false);
  assert.equal(missing.startError, 'ENOENT');
  const env = await runCommand(['sh', '-c', 'echo "$SENTINEL_PROCESS_TEST"'], { timeoutMs: 10_000, env: { SENTINEL_PROCESS_TEST: 'set' } });
  assert.equal(env.stdout, 'set');
});

test('recovery commands report failure with the command and its error', async () => {
  assert.ok((await runRecoveryCommand(['true'])).ms >= 0);
  await assert.rejects(runRecoveryCommand(['sh', '-c', 'echo boom >&2; exit 4']), (e: unknown) => isSentinelError(e, 'unavailable') && /boom/.test(e.message));
  await assert.rejects(runRecoveryCommand(['/nonexistent/restart']), (e: unknown) => isSentinelError(e, 'not-found'));
  await assert.rejects(runRecoveryCommand(['sleep', '5'], 100), (e: unknown) => isSentinelError(e, 'unavailable') && /timed out/.test(e.message));
});

