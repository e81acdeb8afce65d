// Back-off, restart budget and retransmit hysteresis (src/core/recovery-policy.ts), with injected time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartBudget, RetransmitRateMonitor, backoffDelayMs } from '../../src/core/recovery-policy.js';

const backoff = { initialMs: 100, maxMs: 1000, factor: 2 };

test('first restart runs at once, later ones back off exponentially up to the cap', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((n) => backoffDelayMs(n, backoff)), [0, 100, 200, 400, 800, 1000, 1000]);
});

test('restart budget: burst restarts within the interval, then refuses and stays refused', () => {
  const b = new RestartBudget({ burst: 3, intervalMs: 10_000 }, backoff);
  const delays: number[] = [];
  for (let t = 0; t < 3; t++) {
    const d = b.decide(t * 10);
    assert.ok(d.allow);
    delays.push(d.delayMs);
    b.record(t * 10);
  }
  assert.deepEqual(delays, [0, 100, 200]);
  const refused = b.decide(40);
  assert.equal(refused.allow, false);
  assert.match(refused.allow ? '' : refused.reason, /restart budget exhausted: 3 restarts within 10000 ms/);
  assert.equal(b.exhausted, true);
  assert.equal(b.decide(60_000).allow, false, 'an exhausted budget needs a reset, like systemd start limits');
  b.reset();
  assert.ok(b.decide(60_000).allow);
});

test('restarts spread wider than the interval never exhaust the budget', () => {
  const b = new RestartBudget({ burst: 2, intervalMs: 1000 }, backoff);
  for (let t = 0; t < 20_000; t += 1000) {
    const d = b.decide(t);
    assert.ok(d.allow, `refused at ${t}`);
    assert.equal(d.delayMs, 0);
    b.record(t);
  }
});

test('retransmit alarm is raised once at the threshold and cleared only below the low mark', () => {
  const m = new RetransmitRateMonitor({ threshold: 5, windowMs: 1000, clearBelow: 2 });
  const transitions = [];
  for (let i = 0; i < 10; i++) transitions.push(m.add(i * 10));
  assert.deepEqual(
    transitions.map((t) => t?.kind ?? null),
    [null, null, null, null, 'raised', null, null, null, null, null],
  );
  assert.equal(m.alarm, true);
  assert.equal(m.tick(1005), null, 'still 9 in the window: stays raised');
  assert.deepEqual(m.tick(1075), { kind: 'cleared', count: 2 }, 'events up to t=70 left the window');
  assert.equal(m.alarm, false);
});

test('hysteresis: a rate hovering at the threshold does not flap', () => {
  const m = new RetransmitRateMonitor({ threshold: 4, windowMs: 100, clearBelow: 1 });
  let raised = 0;
  let cleared = 0;
  // 4 events per 100 ms window, steady: count oscillates between 3 and 4
  for (let t = 0; t < 2000; t += 25) {
    const tr = m.add(t);
    if (tr?.kind === 'raised') raised++;
    if (tr?.kind === 'cleared') cleared++;
  }
  assert.equal(raised, 1);
  assert.equal(cleared, 0);
  assert.deepEqual(m.tick(5000), { kind: 'cleared', count: 0 });
});
