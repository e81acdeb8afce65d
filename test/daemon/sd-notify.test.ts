// sd_notify: the pure message/address/watchdog parsing, and the protocol against a real AF_UNIX datagram
// listener (Python) at a path and at an abstract address, through the native addon and through systemd-notify.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { formatNotify, oneLine, parseNotify, parseNotifySocket, parseWatchdog } from '../../src/core/sd-notify.js';
import { isSentinelError } from '../../src/core/errors.js';
import { createNotifier } from '../../src/adapters/notify.js';
import { loadNative } from '../../src/adapters/native.js';
import { createLogger } from '../../src/adapters/logger.js';
import { SystemdNotifier, type HealthVerdict } from '../../src/daemon/watchdog.js';
import { startNotifyListener, waitFor } from '../helpers/daemon-harness.js';
import { needs } from '../helpers/env.js';

const hasPython = spawnSync('python3', ['-c', 'import socket'], { encoding: 'utf8' }).status === 0;
const hasSystemdNotify = spawnSync('systemd-notify', ['--help'], { encoding: 'utf8' }).status === 0;

test('formatNotify: fixed order, one KEY=value per line, trailing newline', () => {
  assert.equal(formatNotify({ ready: true, status: 'vault v3 intact', mainPid: 42 }), 'READY=1\nMAINPID=42\nSTATUS=vault v3 intact\n');
  assert.equal(formatNotify({ watchdog: true }), 'WATCHDOG=1\n');
  assert.equal(formatNotify({ stopping: true, status: 'stopping' }), 'STOPPING=1\nSTATUS=stopping\n');
  assert.equal(formatNotify({ reloading: true, monotonicUsec: 123n }), 'RELOADING=1\nMONOTONIC_USEC=123\n');
  assert.throws(() => formatNotify({}), (e) => isSentinelError(e, 'internal'));
});

test('STATUS= cannot inject another assignment through a newline', () => {
  const msg = formatNotify({ status: 'ok\nREADY=1\nWATCHDOG=1' });
  const parsed = parseNotify(msg);
  assert.deepEqual([...parsed.keys()], ['STATUS']);
  assert.equal(oneLine('a'.repeat(600)).length, 512);
});

test('NOTIFY_SOCKET: path, abstract, unset; anything else is refused', () => {
  assert.equal(parseNotifySocket(undefined), null);
  assert.equal(parseNotifySocket(''), null);
  assert.deepEqual(parseNotifySocket('/run/systemd/notify'), { kind: 'path', path: '/run/systemd/notify' });
  assert.deepEqual(parseNotifySocket('@sd-notify-x'), { kind: 'abstract', name: 'sd-notify-x' });
  assert.throws(() => parseNotifySocket('relative/path'), (e) => isSentinelError(e, 'usage'));
  assert.throws(() => parseNotifySocket('@'), (e) => isSentinelError(e, 'usage'));
});

test('WATCHDOG_USEC/WATCHDOG_PID: ping at half the period, only for the named PID', () => {
  assert.equal(parseWatchdog(undefined, undefined, 10), null);
  assert.deepEqual(parseWatchdog('3000000', undefined, 10), { periodUsec: 3_000_000, pingIntervalMs: 1500 });
  assert.deepEqual(parseWatchdog('3000000', '10', 10), { periodUsec: 3_000_000, pingIntervalMs: 1500 });
  assert.equal(parseWatchdog('3000000', '11', 10), null, 'WATCHDOG_PID of another process: not ours to ping');
  for (const bad of ['3s', '-1', '10', '99999999999999']) assert.throws(() => parseWatchdog(bad, undefined, 10), (e) => isSentinelError(e, 'usage'), bad);
  assert.throws(() => parseWatchdog('3000000', 'x', 10), (e) => isSentinelError(e, 'usage'));
});

const kinds = [
  { name: 'native addon', force: false, available: () => loadNative() !== null, why: 'native addon (npm ci builds native/)' },
  { name: 'systemd-notify fallback', force: true, available: () => hasSystemdNotify, why: 'systemd-notify' },
];
for (const kind of kinds) {
  for (const addressKind of ['path', 'abstract'] as const) {
    test(`sd_notify via ${kind.name} reaches a real datagram listener at a ${addressKind} address`, async (t) => {
      if (needs(t, hasPython, 'python3')) return;
      if (needs(t, kind.available(), kind.why)) return;
      const dir = mkdtempSync(join(tmpdir(), 'sentinel-notify-'));
      const address = addressKind === 'path' ? join(dir, 'notify.sock') : `@sentinel-test-${String(process.pid)}-${randomBytes(4).toString('hex')}`;
      const listener = await startNotifyListener(address);
      try {
        const parsed = parseNotifySocket(address);
        assert.ok(parsed !== null);
        const notifier = await createNotifier(parsed, { pid: process.pid, forceFallback: kind.force });
        assert.equal(notifier.kind, kind.force ? 'systemd-notify' : 'native');
        await notifier.send(formatNotify({ ready: true, status: 'vault v1 intact' }));
        const got = await listener.next((d) => d.includes('READY=1'), 5_000);
        const fields = parseNotify(got);
        assert.equal(fields.get('READY'), '1');
        assert.equal(fields.get('STATUS'), 'vault v1 intact');
        if (!kind.force) assert.equal(got, 'READY=1\nSTATUS=vault v1 intact\n', 'native sends our bytes unchanged');
        await notifier.send(formatNotify({ watchdog: true }));
        await listener.next((d) => parseNotify(d).get('WATCHDOG') === '1', 5_000);
      } finally {
        listener.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test('a notify socket nobody listens on is an io error, not a crash', async (t) => {
  if (needs(t, loadNative() !== null, 'native addon')) return;
  const notifier = await createNotifier({ kind: 'path', path: join(tmpdir(), `absent-${randomBytes(4).toString('hex')}.sock`) }, { pid: process.pid });
  await assert.rejects(notifier.send('READY=1\n'), (e) => isSentinelError(e, 'io'));
});

test('watchdog: WATCHDOG=1 only while healthy; withheld on unhealthy components and on event-loop lag; STOPPING=1 at the end', async (t) => {
  if (needs(t, hasPython, 'python3')) return;
  if (needs(t, loadNative() !== null || hasSystemdNotify, 'a way to send datagrams')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-wd-'));
  const listener = await startNotifyListener(join(dir, 'notify.sock'));
  let verdict: HealthVerdict = { ok: true };
  const wd = new SystemdNotifier({
    notifier: await createNotifier({ kind: 'path', path: listener.address }, { pid: process.pid }),
    settings: { periodUsec: 100_000, pingIntervalMs: 50 },
    log: createLogger('silent'),
    maxEventLoopLagMs: 150,
    health: () => verdict,
    statusLine: () => `status ${verdict.ok ? 'ok' : 'bad'}`,
  });
  const isPing = (d: string): boolean => parseNotify(d).get('WATCHDOG') === '1';
  try {
    await wd.ready();
    assert.match(await listener.next((d) => d.startsWith('READY=1'), 5_000), /STATUS=status ok/);
    await listener.next(isPing, 2_000);
    verdict = { ok: false, reason: 'component failed' };
    await listener.next((d) => d.includes('STATUS=status bad'), 2_000);
    const mark = listener.datagrams.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(listener.datagrams.slice(mark).filter(isPing).length, 0, 'no WATCHDOG=1 while a component is failed');
    verdict = { ok: true };
    await listener.next(isPing, 2_000, mark);
    const blockedFrom = Date.now();
    while (Date.now() - blockedFrom < 400) {
      // a busy event loop, as a hung deploy or a runaway computation would cause
    }
    const lagVerdict = await waitFor('a withheld ping after a 400 ms stall', 1_000, () => (wd.verdict.ok ? null : wd.verdict));
    assert.match(lagVerdict.reason ?? '', /event loop lag/, 'a 400 ms stall exceeds the 150 ms lag bound');
    const afterLag = listener.datagrams.length;
    await listener.next(isPing, 2_000, afterLag);
    await wd.stopping();
    await listener.next((d) => d.startsWith('STOPPING=1'), 2_000);
  } finally {
    await wd.stopping();
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
