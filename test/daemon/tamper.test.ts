// Tamper watch on a real sealed vault: a changed file, a lifted +i alone, an added file; heal vs alert-only;
// the cheap flag audit catches a lifted +i even when the watch is slow.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { verifyAuditFile } from '../../src/adapters/audit-log.js';
import { needs, isRoot } from '../helpers/env.js';
import { needsEngine } from '../helpers/bpf.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';

after(() => cleanupDaemonFiles());

interface Status {
  result: { counters: { tampers: number; heals: number }; daemon: { busyWith: string | null }; vault: { version: number } };
}
const status = async (d: TestDaemon): Promise<Status['result']> => ((await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 30_000 })) as Status).result;
const chattr = (...args: string[]): void => {
  const r = spawnSync('chattr', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};
const auditKinds = (d: TestDaemon): string[] => readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind);

async function healedAfter(d: TestDaemon, heals: number, check: () => boolean): Promise<void> {
  await waitFor(`heal #${String(heals)}`, 15_000, async () => {
    const s = await status(d);
    return s.counters.heals >= heals && s.daemon.busyWith === null && check() ? true : null;
  });
}

test('heal mode: a changed file, a lifted +i, an added file are each detected and healed', { timeout: 90_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('tamper-heal', { limits: { flagAuditIntervalMs: 500, verifyIntervalMs: 600_000 } });
  try {
    const live = (): string => join(d.tv.path, 'current', 'tree');
    const engine = (): string => join(live(), 'phi', 'engine.py');
    const original = readFileSync(engine(), 'utf8');

    chattr('-i', engine());
    writeFileSync(engine(), 'def phi(x):\n    return 42\n');
    await healedAfter(d, 1, () => readFileSync(engine(), 'utf8') === original);

    // chattr raises no inotify event (FS_IOC_SETFLAGS bypasses notify_change): the flag audit finds this one.
    chattr('-i', engine());
    await healedAfter(d, 2, () => spawnSync('lsattr', ['-d', engine()], { encoding: 'utf8' }).stdout.split(' ')[0]!.includes('i'));

    chattr('-i', join(live(), 'phi'));
    writeFileSync(join(live(), 'phi', 'backdoor.py'), 'import os\n');
    await healedAfter(d, 3, () => {
      try {
        readFileSync(join(live(), 'phi', 'backdoor.py'));
        return false;
      } catch {
        return true;
      }
    });
    const v = (await sendRequest(d.socket, { op: 'verify' }, { timeoutMs: 30_000 })) as { result: { ok: boolean } };
    assert.equal(v.result.ok, true);
    await d.handle.stop('test');
    await verifyAuditFile(d.auditPath);
    const kinds = auditKinds(d);
    assert.equal(kinds.filter((k) => k === 'tamper').length, 3);
    assert.equal(kinds.filter((k) => k === 'heal').length, 3);
  } finally {
    await d.handle.stop('test');
  }
});

test('alert mode: a tamper is detected, logged and audited but not healed', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('tamper-alert', { limits: { flagAuditIntervalMs: 60_000 } });
  try {
    const engine = join(d.tv.path, 'current', 'tree', 'phi', 'engine.py');
    d.handle.sentinel.setTamperPolicy('alert');
    chattr('-i', engine);
    writeFileSync(engine, 'evil\n');
    await waitFor('tamper detected', 15_000, async () => ((await status(d)).counters.tampers >= 1 ? true : null));
    const s = await status(d);
    assert.equal(s.counters.heals, 0);
    assert.equal(readFileSync(engine, 'utf8'), 'evil\n', 'alert-only leaves the tree as found');
    assert.ok(d.logLines.some((l) => l.event === 'tamper' && l.level === 'error'));
    const heal = (await sendRequest(d.socket, { op: 'heal' }, { timeoutMs: 30_000 })) as { ok: boolean };
    assert.equal(heal.ok, true, 'an operator heal over the socket repairs it');
    const v = (await sendRequest(d.socket, { op: 'verify' }, { timeoutMs: 30_000 })) as { result: { ok: boolean } };
    assert.equal(v.result.ok, true);
  } finally {
    await d.handle.stop('test');
  }
});

test('flag audit: a lifted +i is caught by the periodic flag audit even when the watch reacts slowly', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('tamper-flags', { limits: { flagAuditIntervalMs: 300, tamperDebounceMs: 10_000 } });
  try {
    const file = join(d.tv.path, 'current', 'tree', 'VERSION');
    chattr('-i', file);
    await healedAfter(d, 1, () => true);
    assert.ok(d.logLines.some((l) => l.event === 'flag-audit'), 'found by the flag audit, not the (10 s debounced) watch');
  } finally {
    await d.handle.stop('test');
  }
});

test('eBPF flag tracer: a bare chattr -i is healed at once, and the tamper record names chattr and its pid', { timeout: 60_000 }, async (t) => {
  if (needsEngine(t)) return;
  const d = await startTestDaemon('tamper-ebpf', { limits: { flagAuditIntervalMs: 600_000, verifyIntervalMs: 600_000 } });
  await d.handle.stop('restart with the tracer');
  const config = JSON.parse(readFileSync(d.configPath, 'utf8')) as { vault: Record<string, unknown> };
  config.vault.flagTracer = 'auto';
  writeFileSync(d.configPath, JSON.stringify(config));
  const handle = await startDaemon({ configFile: d.configPath, signals: false, logger: createLogger('silent') });
  try {
    const s0 = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { tamperWatch: { flagTracer: string } } };
    assert.equal(s0.result.tamperWatch.flagTracer, 'attached', 'the engine traces flag changes once the daemon is ready');
    const file = join(d.tv.path, 'current', 'tree', 'VERSION');
    const started = Date.now();
    const lift = spawn('chattr', ['-i', file], { stdio: 'ignore' });
    const lifter = lift.pid!;
    await new Promise((resolve) => lift.once('exit', resolve));
    assert.equal(lift.exitCode, 0, 'chattr -i ran');
    await healedAfter(d, 1, () => spawnSync('lsattr', ['-d', file], { encoding: 'utf8' }).stdout.split(' ')[0]!.includes('i'));
    t.diagnostic(`bare chattr -i healed in ${String(Date.now() - started)} ms (flag audit period 600 s)`);
    const tamper = readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; reason?: string; changedBy?: { pid: number; comm: string; uid: number; liftedImmutable: boolean }[] }).find((r) => r.kind === 'tamper');
    assert.ok(tamper !== undefined, 'a tamper record in the audit log');
    assert.deepEqual(tamper.changedBy?.map((c) => ({ pid: c.pid, comm: c.comm, uid: c.uid, liftedImmutable: c.liftedImmutable })), [{ pid: lifter, comm: 'chattr', uid: 0, liftedImmutable: true }]);
    assert.match(tamper.reason ?? '', new RegExp(`ebpf: inode flags changed by chattr\\[${String(lifter)}\\] uid 0`));
  } finally {
    await handle.stop('test');
  }
});
