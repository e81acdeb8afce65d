// After an exit the recovery action is issued first; the exit is logged and audited right after it,
// and the audit still reads exit → recovery-started (or exit → budget-exhausted) with the same fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfEngineUnavailable } from '../../../src/adapters/bpf-engine.js';
import { EbpfHost } from '../../../src/daemon/ebpf-host.js';
import { createLogger, type LogLevel } from '../../../src/adapters/logger.js';
import { TargetSupervisor, type TargetAuditEvent } from '../../../src/daemon/targets/index.js';
import { targetSchema, type TargetSpecInput } from '../../../src/daemon/targets/spec.js';
import { TargetEventRecorder } from '../../../src/cli/demo/event-recorder.js';
import { freePort, sampleBackendCommand, waitForHealthy } from '../../../src/cli/demo/sample-backend.js';
import { isRoot, needs } from '../../helpers/env.js';

const log = createLogger((process.env.SENTINEL_TEST_LOG ?? 'silent') as LogLevel);

/** What the supervisor said about the target at the moment an audit event was handed over. */
interface Seen {
  event: TargetAuditEvent;
  atNs: bigint;
  restarts: number | undefined;
  state: string | undefined;
}

test('an exit seen in the kernel: the respawn is under way before the exit is audited; the audit reads exit, then recovery-started, with their fields', async (t) => {
  if (needs(t, isRoot() && bpfEngineUnavailable() === null, 'root and the eBPF engine')) return;
  const ebpf = new EbpfHost({ log });
  await ebpf.start();
  const port = await freePort();
  const rec = new TargetEventRecorder();
  const seen: Seen[] = [];
  // the supervisor exists once the first event arrives (events come from start() on)
  const box: { sup: TargetSupervisor | null } = { sup: null };
  const audit = (e: TargetAuditEvent): void => {
    const st = box.sup?.status()[0];
    seen.push({ event: e, atNs: process.hrtime.bigint(), restarts: st?.restarts, state: st?.state });
    rec.record(e);
  };
  const sup = new TargetSupervisor([targetSchema.parse({ name: 'backend', command: sampleBackendCommand(port), port } satisfies TargetSpecInput)], { log, audit, ebpf, childExitEvents: false });
  box.sup = sup;
  t.after(async () => {
    await sup.stop();
    await ebpf.close();
  });
  await sup.start();
  await waitForHealthy(`http://127.0.0.1:${port}/health`);
  const pid = sup.pids()[0]!;
  const from = seen.length;
  process.kill(pid, 'SIGKILL');
  await rec.next((e) => e.event === 'recovered', 10_000, 'recovered');

  const after = seen.slice(from);
  assert.deepEqual(
    after.map((s) => s.event.event),
    ['exit', 'recovery-started', 'recovered'],
    'one exit, one recovery, in this order',
  );
  const [exit, started] = after as [Seen, Seen];
  assert.deepEqual(Object.keys(exit.event).sort(), ['detectedNs', 'detectionLatencyMs', 'event', 'exitNs', 'exitStatus', 'pid', 'signal', 'target', 'via']);
  assert.equal(exit.event.pid, pid);
  assert.equal(exit.event.signal, 9);
  assert.equal(exit.event.exitStatus, null);
  assert.equal(exit.event.via, 'ebpf');
  assert.equal(typeof exit.event.detectionLatencyMs, 'number');
  assert.deepEqual(Object.keys(started.event).sort(), ['action', 'backoffMs', 'event', 'latencyMs', 'reason', 'sinceNs', 'startedNs', 'target']);
  assert.equal(started.event.action, 'respawn');
  assert.equal(started.event.reason, `main PID ${pid} exited (signal 9)`);
  assert.equal(started.event.sinceNs, exit.event.exitNs, 'the latency runs from the kernel exit timestamp');
  assert.equal(started.event.backoffMs, 0);
  // the action was started (and counted) before the exit was audited, not after
  const startedNs = BigInt(String(started.event.startedNs));
  assert.ok(startedNs < exit.atNs, `recovery started at ${startedNs}, the exit audited at ${exit.atNs}`);
  assert.equal(exit.restarts, 1, 'the restart is counted when the exit is audited');
  assert.equal(exit.state, 'recovering');
  assert.equal(Number(started.event.latencyMs), Number(startedNs - BigInt(String(exit.event.exitNs))) / 1e6);
});

test('a crash loop: every exit is audited before what it led to (recovery-started after back-off, budget-exhausted)', async (t) => {
  const rec = new TargetEventRecorder();
  const spec = targetSchema.parse({ name: 'crashy', command: ['sh', '-c', 'sleep 0.2; exit 3'], budget: { burst: 2, intervalMs: 60_000 }, backoff: { initialMs: 30, maxMs: 100 } } satisfies TargetSpecInput);
  const sup = new TargetSupervisor([spec], { log, audit: rec.record });
  t.after(() => sup.stop());
  await sup.start();
  await rec.next((e) => e.event === 'budget-exhausted', 15_000, 'budget exhausted', 0);
  assert.deepEqual(
    rec.events.map((e) => e.event).filter((k) => k !== 'recovered'),
    ['exit', 'recovery-started', 'exit', 'recovery-started', 'exit', 'budget-exhausted'],
  );
  assert.deepEqual(
    rec.events.filter((e) => e.event === 'recovery-started').map((e) => e.backoffMs),
    [0, 30],
  );
  assert.ok(rec.events.filter((e) => e.event === 'exit').every((e) => e.exitStatus === 3), `exit statuses: ${rec.events.filter((e) => e.event === 'exit').map((e) => String(e.exitStatus)).join(', ')}`);
});
