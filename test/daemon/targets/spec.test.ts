// Target config validation (src/daemon/targets/spec.ts): documented key names, defaults, clear messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTargets, syscallTracingOf, targetSchema } from '../../../src/daemon/targets/spec.js';
import { isSentinelError } from '../../../src/core/errors.js';

function configError(value: unknown): string {
  try {
    parseTargets(value);
  } catch (e) {
    assert.ok(isSentinelError(e, 'config'), String(e));
    return e.message;
  }
  assert.fail('expected a config error');
}

test('the three documented examples parse, with defaults filled in', () => {
  const [backend, demo, legacy] = parseTargets([
    { name: 'backend', unit: 'omnimind-backend.service', port: 8000, health: { url: 'http://127.0.0.1:8000/health' } },
    { name: 'demo', command: ['python3', '-m', 'http.server', '8000'], port: 8000 },
    { name: 'legacy', pidFile: '/run/legacy.pid', restart: ['/usr/local/bin/restart-legacy'] },
  ]);
  assert.deepEqual(backend?.health, { url: 'http://127.0.0.1:8000/health', intervalMs: 1000, timeoutMs: 1000, failures: 3 });
  assert.deepEqual(backend?.budget, { burst: 5, intervalMs: 60_000 });
  assert.deepEqual(backend?.backoff, { initialMs: 250, maxMs: 30_000, factor: 2 });
  assert.equal(demo?.retransmit, undefined);
  assert.equal(legacy?.port, 8000);
});

test('exactly one of unit, command, pidFile', () => {
  assert.match(configError([{ name: 'x' }]), /targets\.0: a target needs exactly one of "unit", "command" or "pidFile"/);
  assert.match(configError([{ name: 'x', unit: 'a.service', command: ['b'] }]), /targets\.0\.command: a target takes exactly one of .* not "unit" and "command"/);
});

test('pidFile requires restart; every bad field is named in one error', () => {
  assert.match(configError([{ name: 'x', pidFile: '/run/x.pid' }]), /targets\.0\.restart: a "pidFile" target needs a "restart" command/);
  const msg = configError([{ name: 'x', pidFile: '/run/x.pid', port: 70000, retransmit: { threshold: 10, action: 'reboot' } }]);
  assert.match(msg, /targets\.0\.port:/);
  assert.match(msg, /targets\.0\.retransmit\.action:/);
});

test('hysteresis and back-off bounds are checked', () => {
  assert.match(configError([{ name: 'x', command: ['a'], retransmit: { threshold: 10, clearBelow: 10 } }]), /clearBelow.*must be below "threshold"/);
  assert.match(configError([{ name: 'x', command: ['a'], backoff: { initialMs: 500, maxMs: 100 } }]), /backoff\.maxMs.*at least "initialMs"/);
});

test('unknown keys and duplicate names are refused', () => {
  assert.match(configError([{ name: 'x', command: ['a'], restartt: ['b'] }]), /restartt/);
  assert.match(configError([{ name: 'x', command: ['a'] }, { name: 'x', command: ['b'] }]), /duplicate target name "x"/);
  assert.equal(targetSchema.safeParse({ name: 'bad name', command: ['a'] }).success, false);
});

test('recovery timeouts are bounded fields with documented defaults', () => {
  const [t] = parseTargets([{ name: 'x', pidFile: '/run/x.pid', restart: ['r'] }]);
  assert.equal(t?.restartTimeoutMs, 60_000);
  assert.equal(t?.pidFileWaitMs, 5_000);
  assert.equal(t?.stopGraceMs, 2_000);
  const msg = configError([{ name: 'x', command: ['a'], restartTimeoutMs: 50, pidFileWaitMs: -1, stopGraceMs: 600_001 }]);
  assert.match(msg, /targets\.0\.restartTimeoutMs:/);
  assert.match(msg, /targets\.0\.pidFileWaitMs:/);
  assert.match(msg, /targets\.0\.stopGraceMs:/);
});

test('stall and syscalls: documented defaults, bounds, errors name the field', () => {
  const [plain, stalled, traced] = parseTargets([
    { name: 'a', command: ['a'] },
    { name: 'b', command: ['b'], stall: {} },
    { name: 'c', unit: 'c.service', stall: { thresholdMs: 500, action: 'restart' }, syscalls: { slowMs: 10 } },
  ]);
  assert.equal(plain?.stall, undefined);
  assert.equal(syscallTracingOf(plain ?? { stall: undefined, syscalls: undefined }), null, 'no tracing unless asked for');
  assert.deepEqual(stalled?.stall, { thresholdMs: 2000, action: 'alert' });
  assert.deepEqual(syscallTracingOf(stalled ?? { stall: undefined, syscalls: undefined }), { slowMs: 50, slowPerSec: 10 }, 'stall turns tracing on with defaults');
  assert.deepEqual(traced?.stall, { thresholdMs: 500, action: 'restart' });
  assert.deepEqual(traced?.syscalls, { slowMs: 10, slowPerSec: 10 });
  const msg = configError([{ name: 'x', command: ['a'], stall: { thresholdMs: 10, action: 'reboot' }, syscalls: { slowMs: 0, slowPerSec: 5000, extra: 1 } }]);
  for (const field of ['targets.0.stall.thresholdMs', 'targets.0.stall.action', 'targets.0.syscalls.slowMs', 'targets.0.syscalls.slowPerSec', 'targets.0.syscalls']) assert.ok(msg.includes(`${field}:`), `${field} named in: ${msg}`);
  assert.match(configError([{ name: 'x', command: ['a'], stall: { thresholdMs: 600_001 } }]), /targets\.0\.stall\.thresholdMs:/);
  assert.match(configError([{ name: 'x', command: ['a'], stall: { thresholdMs: 1.5 } }]), /targets\.0\.stall\.thresholdMs:/);
});
