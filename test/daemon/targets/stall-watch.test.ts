// The stall detector against the real kernel: an asyncio loop (test/fixtures/bpf/loop-target.py)
// traced in the daemon's eBPF engine. Idle in epoll_wait for three thresholds and more: nothing.
// A busy main thread longer than the threshold: one 'stall' (alert: no recovery; restart: a
// recovery through the supervisor's callback), then 'stall-ended' when it is back in its wait.
// A slow syscall shows in the trace view with its name and duration.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import pino from 'pino';
import { ALL_GROUPS, BpfEngine } from '../../../src/adapters/bpf-engine.js';
import type { BpfRecord } from '../../../src/core/bpf-records.js';
import { StallWatch, type SyscallTracer } from '../../../src/daemon/targets/stall-watch.js';
import { parseTargets } from '../../../src/daemon/targets/spec.js';
import type { TriggerTarget } from '../../../src/daemon/targets/triggers.js';
import type { TargetAuditEvent } from '../../../src/daemon/targets/types.js';
import { kill, needsEngine, startLoopTarget } from '../../helpers/bpf.js';
import { waitFor } from '../../helpers/wait.js';

// The engine as the daemon's host hands it to the stall detector.
function engineTracer(t: { after(fn: () => void): void }): SyscallTracer {
  const handlers = new Map<string, Set<(r: BpfRecord) => void>>();
  const engine = BpfEngine.open({ groups: ALL_GROUPS, onRecord: (r) => handlers.get(r.kind)?.forEach((h) => h(r)) });
  t.after(() => engine.close());
  return {
    unavailable: null,
    on: (kind: string, fn: (r: never) => void): (() => boolean) => {
      const set = handlers.get(kind) ?? new Set();
      handlers.set(kind, set);
      set.add(fn as (r: BpfRecord) => void);
      return () => set.delete(fn as (r: BpfRecord) => void);
    },
    allocateSlot: () => engine.allocateSlot(),
    releaseSlot: (s) => engine.releaseSlot(s),
    traceSyscalls: (pid, slot, tracing) => {
      if (tracing === null) engine.unwatch(pid);
      else engine.watch(pid, { slot, exit: true, syscalls: tracing });
      return true;
    },
    loopState: (s) => engine.loopState(s),
    histogram: (s) => engine.histogram(s),
    clearSlot: (s) => engine.clearSlot(s),
  };
}

async function setup(t: { after(fn: () => void): void }, stall: { thresholdMs: number; action: 'alert' | 'restart' }, busySeconds: number) {
  const target = await startLoopTarget(busySeconds);
  t.after(() => kill(target.child));
  const [spec] = parseTargets([{ name: 'loop', command: ['x'], stall, syscalls: { slowMs: 100 } }]);
  const tt: TriggerTarget = { spec: spec!, pid: target.pid, state: 'running' };
  const events: TargetAuditEvent[] = [];
  const recovered: { reason: string; sinceNs: bigint }[] = [];
  const watch = new StallWatch([tt], engineTracer(t), { log: pino({ level: 'silent' }), emit: (e) => events.push(e), hrtimeNs: () => process.hrtime.bigint(), now: () => performance.now(), recover: (_t, reason, sinceNs) => recovered.push({ reason, sinceNs }) });
  watch.start();
  t.after(() => watch.stop());
  // Armed once its loop is seen back in epoll_wait (a wake-up makes it go round once).
  target.child.kill('SIGWINCH');
  assert.equal(await target.line(), 'woke');
  await waitFor('the loop armed and waiting', 5_000, () => (watch.snapshot('loop')[0]?.stall?.armed === true && watch.snapshot('loop')[0]?.stall?.inWait === true ? true : null));
  return { target, watch, events, recovered };
}

test('idle in epoll_wait for 3x the threshold is no stall; a busy loop past it is one alert, then stall-ended', async (t) => {
  if (needsEngine(t)) return;
  const thresholdMs = 300;
  const { target, watch, events, recovered } = await setup(t, { thresholdMs, action: 'alert' }, 1.0);
  await new Promise((r) => setTimeout(r, 3 * thresholdMs + 200));
  assert.equal(events.length, 0, `idle is not a stall: ${JSON.stringify(events)}`);
  const busyFrom = process.hrtime.bigint();
  target.child.kill('SIGUSR1');
  const stall = await waitFor('the stall event', 5_000, () => events.find((e) => e.event === 'stall'));
  assert.equal(stall.target, 'loop');
  assert.equal(stall.pid, target.pid);
  assert.equal(stall.detector, 'stall');
  assert.ok((stall.busyMs as number) >= thresholdMs, `busy ${String(stall.busyMs)} ms`);
  assert.ok(BigInt(stall.detectedNs as string) - busyFrom >= BigInt(thresholdMs) * 1_000_000n, 'not before the threshold');
  assert.equal(watch.snapshot('loop')[0]?.stall?.stalled, true);
  const ended = await waitFor('the stall-ended event', 5_000, () => events.find((e) => e.event === 'stall-ended'));
  assert.ok((ended.busyMs as number) >= 900, `the whole busy stretch: ${String(ended.busyMs)} ms`);
  assert.equal(events.filter((e) => e.event === 'stall').length, 1, 'one stall, reported once');
  assert.equal(recovered.length, 0, 'alert does not recover');
  const view = watch.snapshot('loop')[0];
  assert.equal(view?.stall?.stalls, 1);
  assert.ok((view?.histogram.reduce((a, b) => a + b, 0) ?? 0) > 0, 'the histogram counted syscalls');
});

test('action restart: the stall recovers the target through the supervisor; a slow syscall is named in the trace view', async (t) => {
  if (needsEngine(t)) return;
  const { target, watch, events, recovered } = await setup(t, { thresholdMs: 200, action: 'restart' }, 0.6);
  target.child.kill('SIGUSR2'); // time.sleep(0.6) in the loop: a slow clock_nanosleep, and a stall
  await waitFor('the recovery', 5_000, () => (recovered.length > 0 ? true : null));
  assert.match(recovered[0]?.reason ?? '', /main thread stalled: away from its wait syscall for \d+ ms \(threshold 200 ms\)/);
  assert.equal(events.find((e) => e.event === 'stall')?.action, 'restart');
  const slow = await waitFor('the slow syscall in the view', 5_000, () => watch.snapshot('loop')[0]?.slow.find((s) => s.durationMs >= 500));
  assert.match(slow.syscall, /nanosleep|select/);
  assert.throws(() => watch.snapshot('nope'), /no target named "nope"/);
});
