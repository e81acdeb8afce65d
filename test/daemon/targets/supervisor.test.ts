// TargetSupervisor against real processes, the real eBPF engine and real /proc: exits seen and
// recovered (its bounds and failure reports: supervisor-bounds.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readPidFile } from '../../../src/adapters/proc.js';
import { httpProbe } from '../../../src/adapters/http-probe.js';
import { freePort, sampleBackendCommand, waitForHealthy } from '../../../src/cli/demo/sample-backend.js';
import { isRoot, needs } from '../../helpers/env.js';
import { waitFor } from '../../helpers/wait.js';
import { alive, ebpfReady, engine, pidFileBackend, supervise } from '../../helpers/supervise.js';

test('SIGKILL of a supervised backend: eBPF reports signal 9 for its PID and it is respawned', async (t) => {
  if (needs(t, ebpfReady, 'root and the eBPF engine')) return;
  const port = await freePort();
  const { sup, rec } = await supervise(t, [{ name: 'backend', command: sampleBackendCommand(port), port }], await engine());
  await waitForHealthy(`http://127.0.0.1:${port}/health`);
  const [st] = sup.status();
  assert.equal(st?.mode, 'ebpf');
  assert.equal(st?.degraded, null);
  const pid = sup.pids()[0]!;
  const from = rec.events.length;
  process.kill(pid, 'SIGKILL');
  const exit = await rec.next((e) => e.event === 'exit', 5000, 'exit event', from);
  assert.equal(exit.pid, pid);
  assert.equal(exit.signal, 9);
  assert.equal(exit.exitStatus, null);
  // For a supervised command the kernel event and the child's exit event race (both < 2 ms);
  // the pid-file test below has only the eBPF path and pins it.
  assert.ok(exit.via === 'ebpf' || exit.via === 'child', `detected via ${String(exit.via)}`);
  const started = await rec.next((e) => e.event === 'recovery-started', 5000, 'recovery started', from);
  assert.equal(started.action, 'respawn');
  const back = await rec.next((e) => e.event === 'recovered', 5000, 'recovered', from);
  assert.notEqual(back.pid, pid);
  assert.deepEqual(sup.pids(), [back.pid]);
  await waitForHealthy(`http://127.0.0.1:${port}/health`);
  assert.equal(sup.status()[0]?.restarts, 1);
  assert.match(sup.statusLine(), /backend running pid \d+ ebpf restarts 1/);
});

test('thread exits inside a watched multi-threaded process do not count; its own exit does (pid file target)', async (t) => {
  if (needs(t, ebpfReady, 'root and the eBPF engine')) return;
  const b = await pidFileBackend();
  const { sup, rec } = await supervise(t, [{ name: 'legacy', pidFile: b.pidFile, restart: b.restart, port: b.port }], await engine(), b.cleanup);
  const pid = await readPidFile(b.pidFile);
  assert.deepEqual(sup.pids(), [pid]);
  assert.equal(sup.status()[0]?.mode, 'ebpf');
  for (let i = 0; i < 20; i++) {
    const r = await httpProbe(`http://127.0.0.1:${b.port}/thread`, 2000);
    assert.ok(r.ok, 'the backend started and joined an extra thread');
  }
  const from = rec.events.length;
  process.kill(pid, 'SIGKILL');
  const exit = await rec.next((e) => e.event === 'exit', 5000, 'exit event', from);
  assert.equal(exit.pid, pid);
  assert.equal(exit.signal, 9);
  assert.equal(exit.via, 'ebpf');
  assert.equal(rec.events.filter((e) => e.event === 'exit').length, 1, '20 thread exits inside the backend produced no exit event');
  const back = await rec.next((e) => e.event === 'recovered', 10_000, 'recovered via restart command', from);
  const newPid = await readPidFile(b.pidFile);
  assert.equal(back.pid, newPid, 'the pid file was re-read after the restart command');
  assert.notEqual(newPid, pid);
  assert.equal(sup.status()[0]?.mode, 'ebpf', 'the new PID is in the kernel map: nothing re-attaches');
  const from2 = rec.events.length;
  process.kill(newPid, 'SIGKILL');
  const exit2 = await rec.next((e) => e.event === 'exit', 5000, 'second exit', from2);
  assert.equal(exit2.pid, newPid);
  assert.equal(exit2.via, 'ebpf');
  await rec.next((e) => e.event === 'recovered', 10_000, 'second recovery', from2);
});

test('a crash loop exhausts the restart budget and stops restarting, saying why', async (t) => {
  const { sup, rec } = await supervise(t, [{ name: 'crashy', command: ['sh', '-c', 'sleep 0.2; exit 3'], budget: { burst: 3, intervalMs: 60_000 }, backoff: { initialMs: 20, maxMs: 100 } }], await engine());
  const ex = await rec.next((e) => e.event === 'budget-exhausted', 15_000, 'budget exhausted', 0);
  assert.match(String(ex.reason), /restart budget exhausted: 3 restarts within 60000 ms/);
  const [st] = sup.status();
  assert.equal(st?.state, 'failed');
  assert.equal(st?.restarts, 3);
  assert.match(st?.failedReason ?? '', /restart budget exhausted/);
  assert.equal(rec.events.filter((e) => e.event === 'recovery-started').length, 3);
  const exits = rec.events.filter((e) => e.event === 'exit');
  assert.equal(exits.length, 4, 'first start and three restarts all exited');
  assert.ok(exits.every((e) => e.exitStatus === 3), `exit statuses: ${exits.map((e) => String(e.exitStatus)).join(', ')}`);
  const backoffs = rec.events.filter((e) => e.event === 'recovery-started').map((e) => e.backoffMs);
  assert.deepEqual(backoffs, [0, 20, 40]);
  assert.deepEqual(sup.pids(), []);
});

test('a hung backend (event loop blocked: accepts, never answers) is recovered by the health probe; recovered only once healthy', async (t) => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/health`;
  // The respawned backend takes a second or two to listen (FastAPI's import): it is "starting" until its
  // first probe passes, so refused probes meanwhile do not count as a second hang.
  const { sup, rec } = await supervise(t, [{ name: 'hung', command: sampleBackendCommand(port), port, health: { url, intervalMs: 100, timeoutMs: 200, failures: 3 } }], await engine());
  await waitForHealthy(url);
  // The supervisor's own first probe must have passed too: a target hung while "starting" is left to startTimeoutMs.
  await waitFor('the target running', 10_000, () => (sup.status()[0]?.state === 'running' ? true : null));
  const pid = sup.pids()[0]!;
  const from = rec.events.length;
  assert.equal((await httpProbe(`http://127.0.0.1:${port}/hang`, 300)).ok, false, '/hang never answers: it blocks the event loop');
  const failed = await rec.next((e) => e.event === 'health-failed', 10_000, 'health failure', from);
  assert.equal(failed.pid, pid);
  assert.equal(failed.failures, 3);
  assert.match(String(failed.error), /no answer within 200 ms/);
  const back = await rec.next((e) => e.event === 'recovered', 30_000, 'recovered', from);
  assert.notEqual(back.pid, pid);
  assert.equal(alive(pid), false, 'the hung process was killed');
  assert.equal((await httpProbe(url, 2000)).ok, true, '"recovered" came only once the new process answered');
  assert.equal(sup.status()[0]?.state, 'running');
  assert.equal(rec.events.slice(from).filter((e) => e.event === 'recovery-started').length, 1);
});

test('a restarted pid-file target: each new PID is seen in the kernel on its first kill, right after its restart (nothing re-attaches)', async (t) => {
  if (needs(t, ebpfReady, 'root and the eBPF engine')) return;
  const b = await pidFileBackend();
  const { sup, rec } = await supervise(t, [{ name: 'legacy', pidFile: b.pidFile, restart: b.restart, port: b.port, budget: { burst: 10, intervalMs: 60_000 }, backoff: { initialMs: 0, maxMs: 0 } }], await engine(), b.cleanup);
  for (let i = 0; i < 3; i++) {
    const pid = sup.pids()[0]!;
    assert.equal(sup.status()[0]?.mode, 'ebpf', `kill ${String(i + 1)}: PID ${String(pid)} covered in the kernel`);
    const from = rec.events.length;
    process.kill(pid, 'SIGKILL');
    const exit = await rec.next((e) => e.event === 'exit', 5000, `exit ${String(i + 1)}`, from);
    assert.equal(exit.pid, pid);
    assert.equal(exit.via, 'ebpf', `kill ${String(i + 1)} seen by the kernel, not the poll`);
    assert.equal(exit.signal, 9);
    const back = await rec.next((e) => e.event === 'recovered', 10_000, `recovered ${String(i + 1)}`, from);
    assert.notEqual(back.pid, pid);
  }
  assert.equal(rec.events.filter((e) => e.event === 'tracer-attached' || e.event === 'tracer-down').length, 0, 'no tracer came or went');
});

test('without the eBPF engine (no BPF object): /proc polling and the child exit event detect exits, reported as degraded', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const b = await pidFileBackend();
  const port = await freePort();
  const { sup, rec } = await supervise(
    t,
    [
      { name: 'legacy', pidFile: b.pidFile, restart: b.restart, port: b.port },
      { name: 'demo', command: sampleBackendCommand(port), port },
    ],
    { ...(await engine({ objectPath: '/nonexistent/sentinel.bpf.o' })), pollIntervalMs: 10 },
    b.cleanup,
  );
  const [legacy, demo] = sup.status();
  assert.equal(legacy?.mode, 'poll');
  assert.match(legacy?.degraded ?? '', /BPF object is not built.*polling \/proc/);
  assert.equal(demo?.mode, 'supervised');
  assert.match(sup.statusLine(), /legacy running pid \d+ poll \(degraded\)/);

  const legacyPid = legacy.pid!;
  let from = rec.events.length;
  process.kill(legacyPid, 'SIGKILL');
  const exit = await rec.next((e) => e.event === 'exit' && e.target === 'legacy', 5000, 'polled exit', from);
  assert.equal(exit.pid, legacyPid);
  assert.equal(exit.via, 'poll');
  const back = await rec.next((e) => e.event === 'recovered' && e.target === 'legacy', 10_000, 'legacy recovered', from);
  assert.equal(back.pid, await readPidFile(b.pidFile));

  await waitForHealthy(`http://127.0.0.1:${port}/health`);
  const demoPid = sup.status()[1]!.pid!;
  from = rec.events.length;
  process.kill(demoPid, 'SIGKILL');
  const exit2 = await rec.next((e) => e.event === 'exit' && e.target === 'demo', 5000, 'child exit', from);
  assert.equal(exit2.via, 'child');
  assert.equal(exit2.signal, 9);
  await rec.next((e) => e.event === 'recovered' && e.target === 'demo', 5000, 'demo recovered', from);
});

test('a pid-file target restarted by someone else is adopted, not restarted a second time', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const b = await pidFileBackend();
  const marker = join(b.dir, 'restart-ran');
  const restart = join(b.dir, 'marker-restart.sh');
  await writeFile(restart, `#!/bin/sh\ntouch '${marker}'\nexec '${b.restart[0]}'\n`, { mode: 0o755 });
  const { sup, rec } = await supervise(t, [{ name: 'legacy', pidFile: b.pidFile, restart: [restart], port: b.port }], await engine(), b.cleanup);
  const oldPid = sup.pids()[0]!;
  const port2 = await freePort();
  const quoted = sampleBackendCommand(port2, ['--pid-file', b.pidFile]).map((a) => `'${a}'`).join(' ');
  execFileSync('sh', ['-c', `${quoted} </dev/null >/dev/null 2>&1 &`]);
  await waitForHealthy(`http://127.0.0.1:${port2}/health`);
  const operatorPid = await readPidFile(b.pidFile);
  assert.notEqual(operatorPid, oldPid);
  const from = rec.events.length;
  process.kill(oldPid, 'SIGKILL');
  const back = await rec.next((e) => e.event === 'recovered', 10_000, 'recovered', from);
  assert.equal(back.pid, operatorPid);
  assert.deepEqual(sup.pids(), [operatorPid]);
  assert.equal(existsSync(marker), false, 'the restart command did not run');
});
