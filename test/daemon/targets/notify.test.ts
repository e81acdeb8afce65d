// The sentinel as the notify socket of its own `command` targets, against real processes: the sample
// FastAPI backend gets NOTIFY_SOCKET and WATCHDOG_USEC, is running only after its READY=1, and when
// /gil stops its pings it gets SIGABRT (every thread's stack, kept in the audit event), then is
// restarted through the budget. READY=1 from any process but the main one does not count.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type LogLevel } from '../../../src/adapters/logger.js';
import { readProcState } from '../../../src/adapters/proc.js';
import { httpProbe } from '../../../src/adapters/http-probe.js';
import { loadNative } from '../../../src/adapters/native.js';
import { TargetSupervisor } from '../../../src/daemon/targets/index.js';
import { parseTargets, targetSchema, type TargetSpecInput } from '../../../src/daemon/targets/spec.js';
import { TargetEventRecorder } from '../../../src/cli/demo/event-recorder.js';
import { freePort, pythonBinary, sampleBackendCommand } from '../../../src/cli/demo/sample-backend.js';
import { needs } from '../../helpers/env.js';
import { waitFor } from '../../helpers/wait.js';

const log = createLogger((process.env.SENTINEL_TEST_LOG ?? 'silent') as LogLevel);
const hasListener = (): boolean => loadNative()?.NotifyListener !== undefined;

/** A supervisor without kernel sources (the child's own exit event detects); stopped at teardown. */
async function supervise(t: TestContext, specs: TargetSpecInput[], childExitEvents = true): Promise<{ sup: TargetSupervisor; rec: TargetEventRecorder; pids: Set<number> }> {
  const rec = new TargetEventRecorder();
  const sup = new TargetSupervisor(
    specs.map((s) => targetSchema.parse(s)),
    { log, audit: rec.record, childExitEvents },
  );
  const pids = new Set<number>();
  const track = setInterval(() => sup.pids().forEach((p) => pids.add(p)), 20);
  t.after(async () => {
    clearInterval(track);
    await sup.stop();
    for (const pid of pids) assert.equal((await readProcState(pid)).alive, false, `PID ${String(pid)} outlived the supervisor`);
  });
  await sup.start();
  sup.pids().forEach((p) => pids.add(p));
  return { sup, rec, pids };
}

test('watchdog: the sample backend is running after READY=1; /gil stops its pings → SIGABRT with every thread\'s stack → restarted', async (t) => {
  if (needs(t, hasListener(), 'the native addon with NotifyListener (npm ci)')) return;
  const port = await freePort();
  const url = `http://127.0.0.1:${String(port)}/health`;
  process.env.SAMPLE_BACKEND_STARTUP_DELAY = '1';
  const t0 = performance.now();
  let started: Awaited<ReturnType<typeof supervise>>;
  try {
    started = await supervise(t, [{ name: 'backend', command: sampleBackendCommand(port), port, watchdog: { timeoutMs: 2000, abortTimeoutMs: 5000 }, startTimeoutMs: 30_000 }]);
  } finally {
    delete process.env.SAMPLE_BACKEND_STARTUP_DELAY;
  }
  const { sup, rec } = started;
  // start() returns once READY=1 came: after the app's slow startup, with the port already serving.
  assert.ok(performance.now() - t0 >= 1000, 'not running before the startup completed');
  const [st] = sup.status();
  assert.equal(st?.state, 'running');
  assert.equal((await httpProbe(url, 2000)).ok, true);
  const first = st.pid!;
  const env = await readFile(`/proc/${String(first)}/environ`, 'utf8').catch(() => '');
  // The integration removes the variables once read; the kernel's copy of the start environment keeps them.
  assert.match(env, /WATCHDOG_USEC=2000000\0/);
  assert.match(env, /NOTIFY_SOCKET=\/[^\0]+\.notify\0/);
  // Pings keep it alive well past the timeout.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(rec.events.some((e) => e.event === 'watchdog-timeout'), false, 'a pinging backend is left alone');
  assert.equal(sup.status()[0]?.pid, first);

  // /gil: a C call holds the GIL, the loop's pings stop.
  void httpProbe(`http://127.0.0.1:${String(port)}/gil`, 30_000);
  const from = rec.events.length;
  const timeout = await rec.next((e) => e.event === 'watchdog-timeout', 10_000, 'the watchdog timeout', from);
  assert.equal(timeout.pid, first);
  assert.equal(timeout.signal, 'SIGABRT');
  assert.ok(Number(timeout.lastPingAgoMs) >= 2000, String(timeout.lastPingAgoMs));
  const dump = await rec.next((e) => e.event === 'stack-dump', 10_000, 'the stack dump', from);
  const evidence = (dump.evidence as string[]).join('\n');
  assert.match(evidence, /Fatal Python error: Aborted/);
  assert.match(evidence, /in gil\b/, 'the stuck handler is in the stacks');
  const exit = await rec.next((e) => e.event === 'exit', 10_000, 'the exit', from);
  assert.equal(exit.signal, 6);
  const recovered = await rec.next((e) => e.event === 'recovered', 30_000, 'the restart', from);
  assert.notEqual(recovered.pid, first);
  assert.equal(sup.status()[0]?.state, 'running');
  assert.equal(sup.status()[0]?.restarts, 1);
  assert.equal((await httpProbe(url, 2000)).ok, true);
});

// The watchdog signal does not end the process: SIGUSR1 only dumps the stacks (serve --watchdog-signal
// SIGUSR1), the process stays hung, and SIGKILL after abortTimeoutMs ends it. The exit is found by the
// /proc poll (the child's own exit event is not used as a detector here): the dump is still recorded.
test('watchdog: a signal that does not end the process (SIGUSR1 dumps) → SIGKILL after abortTimeoutMs → the dump recorded, the exit found by the /proc poll → restarted', async (t) => {
  if (needs(t, hasListener(), 'the native addon with NotifyListener (npm ci)')) return;
  const port = await freePort();
  const { sup, rec } = await supervise(t, [{ name: 'backend', command: sampleBackendCommand(port, ['--watchdog-signal', 'SIGUSR1']), port, watchdog: { timeoutMs: 1000, signal: 'SIGUSR1', abortTimeoutMs: 1000 }, startTimeoutMs: 30_000 }], false);
  const first = sup.status()[0]?.pid;
  assert.ok(first !== null && first !== undefined);
  const from = rec.events.length;
  void httpProbe(`http://127.0.0.1:${String(port)}/gil`, 30_000);
  const timeout = await rec.next((e) => e.event === 'watchdog-timeout', 10_000, 'the watchdog timeout', from);
  assert.equal(timeout.signal, 'SIGUSR1');
  const exit = await rec.next((e) => e.event === 'exit', 15_000, 'the exit', from);
  assert.equal(exit.via, 'poll', 'found by the /proc poll');
  assert.equal(exit.pid, first);
  const dump = await rec.next((e) => e.event === 'stack-dump', 10_000, 'the stack dump', from);
  assert.equal(dump.signal, 'SIGKILL', 'ended by the SIGKILL after abortTimeoutMs, not by the watchdog signal');
  const evidence = (dump.evidence as string[]).join('\n');
  assert.match(evidence, /in gil\b/, `the stuck handler is in the stacks dumped on SIGUSR1: ${evidence}`);
  const recovered = await rec.next((e) => e.event === 'recovered', 30_000, 'the restart', from);
  assert.notEqual(recovered.pid, first);
});

test('watchdog: READY=1 from a process other than the main one does not count; the start times out and the budget ends it', async (t) => {
  if (needs(t, hasListener(), 'the native addon with NotifyListener (npm ci)')) return;
  // The shell is the main process; a Python child of it sends READY=1 (NotifyAccess=main refuses it).
  const send = 'import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])';
  const { sup, rec } = await supervise(t, [
    { name: 'impostor', command: ['sh', '-c', `${pythonBinary()} -c '${send}'; exec sleep 600`], watchdog: { timeoutMs: 1000 }, startTimeoutMs: 800, budget: { burst: 1, intervalMs: 600_000 }, backoff: { initialMs: 10, maxMs: 10 } },
  ]);
  const failed = await rec.next((e) => e.event === 'budget-exhausted', 15_000, 'the budget to end it', 0);
  assert.match(String(failed.reason), /no READY=1 within 800 ms/);
  const [st] = sup.status();
  assert.equal(st?.state, 'failed');
  assert.deepEqual(sup.pids(), [], 'no main process is left');
  assert.equal(rec.events.some((e) => e.event === 'recovered'), false);
});

test('without watchdog a command target never sees the daemon\'s own NOTIFY_SOCKET', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-notify-env-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'env');
  process.env.NOTIFY_SOCKET = '/run/systemd/notify';
  process.env.WATCHDOG_USEC = '20000000';
  try {
    await supervise(t, [{ name: 'plain', command: ['sh', '-c', `echo "[\${NOTIFY_SOCKET-unset}] [\${WATCHDOG_USEC-unset}]" > ${out}; exec sleep 600`] }]);
  } finally {
    delete process.env.NOTIFY_SOCKET;
    delete process.env.WATCHDOG_USEC;
  }
  // The shell writes the file once it runs; a busy machine may take longer than a fixed count of polls.
  const text = await waitFor(`the target's environment written to ${out}`, 30_000, async () => {
    const s = await readFile(out, 'utf8').catch(() => '');
    return s === '' ? null : s;
  });
  assert.equal(text, '[unset] [unset]\n');
});

test('watchdog is refused on a unit or pid-file target: the unit has its own WatchdogSec=', () => {
  assert.throws(() => parseTargets([{ name: 'u', unit: 'x.service', watchdog: { timeoutMs: 1000 } }]), /targets.0.watchdog: "watchdog" is for "command" targets/);
  assert.throws(() => targetSchema.parse({ name: 'c', command: ['x'], watchdog: { timeoutMs: 10 } }));
  assert.equal(targetSchema.parse({ name: 'c', command: ['x'], watchdog: { timeoutMs: 1000 } }).watchdog?.signal, 'SIGABRT');
});
