// The sentinel unit as shipped, under a real systemd (systemd-nspawn):
// READY=1 → active (running) with STATUS, deploy over the socket, tamper healed (and logged at its journald
// priority), SIGSTOP → watchdog kill + restart, vault verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootContainer, needsNspawn, reporterResult } from '../helpers/nspawn.js';
import { e2eBinds, prepareE2eDirs, signE2eRelease, writeNotifyDropIn } from '../helpers/nspawn-inputs.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { loadNative } from '../../src/adapters/native.js';
import { renderUnit } from '../../src/daemon/install-units.js';
import { bpfEngineUnavailable } from '../../src/adapters/bpf-engine.js';
import { needs } from '../helpers/env.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures', 'nspawn');
const BOOT_TIMEOUT_MS = 110_000;

interface E2eResult {
  ok: boolean;
  errors: string[];
  steps: Record<string, unknown>;
  journal?: string[];
  totalMs?: number;
}

test('sentinel under a real systemd: ready, status, deploy, heal, watchdog restart, verify', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const d = await prepareE2eDirs('sentinel-nspawn-', ['engine']);
  const { dir, etc, e2e, out, src } = d;
  try {
    await copyFile(join(fixtures, 'sentinel.json'), join(etc, 'sentinel.json'));
    await writeFile(join(src, 'engine', 'phi.py'), 'phi = 1\n');
    await writeFile(join(src, 'engine', 'weights.bin'), Buffer.alloc(256 * 1024, 7));
    signE2eRelease(d, 1);
    await writeFile(join(src, 'engine', 'phi.py'), 'phi = 2\n');
    signE2eRelease(d, 2);
    await copyFile(join(fixtures, 'setup.sh'), join(e2e, 'setup.sh'));

    const unit = renderUnit(await readFile(join(root, 'systemd', 'omnimind-sentinel.service'), 'utf8'), { node: process.execPath, cli: '/opt/omnimind-sentinel/dist/src/cli/main.js', docs: '/opt/omnimind-sentinel' });
    await writeFile(join(dir, 'omnimind-sentinel.service'), unit);
    await writeFile(join(dir, 'omnimind.slice'), renderUnit(await readFile(join(root, 'systemd', 'omnimind.slice'), 'utf8'), { node: process.execPath, cli: '/opt/omnimind-sentinel/dist/src/cli/main.js', docs: '/opt/omnimind-sentinel' }));
    let dropIn = await readFile(join(fixtures, 'e2e-drop-in.conf'), 'utf8');
    // Without the native addon sd_notify goes through systemd-notify (another PID): only NotifyAccess=all accepts it.
    if (loadNative() === null) dropIn += 'NotifyAccess=all\n';
    await writeFile(join(dir, 'e2e.conf'), dropIn);

    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      args: [
        ...e2eBinds(d),
        `--bind-ro=${join(dir, 'omnimind-sentinel.service')}:/etc/systemd/system/omnimind-sentinel.service`,
        `--bind-ro=${join(dir, 'omnimind.slice')}:/etc/systemd/system/omnimind.slice`,
        `--bind-ro=${join(dir, 'e2e.conf')}:/etc/systemd/system/omnimind-sentinel.service.d/e2e.conf`,
        `--bind-ro=${join(fixtures, 'sentinel-e2e-setup.service')}:/etc/systemd/system/sentinel-e2e-setup.service`,
        `--bind-ro=${join(fixtures, 'sentinel-e2e-reporter.service')}:/etc/systemd/system/sentinel-e2e-reporter.service`,
      ],
      wants: ['sentinel-e2e-setup.service', 'omnimind-sentinel.service', 'sentinel-e2e-reporter.service'],
    });
    const result = await reporterResult<E2eResult>(boot, out, 'result.json', BOOT_TIMEOUT_MS);
    const context = `errors: ${result.errors.join('\n')}\njournal:\n${(result.journal ?? []).join('\n')}`;
    assert.equal(result.ok, true, context);
    const s = result.steps as {
      ready: Record<string, string>;
      statusText: string;
      deploy: { ok: boolean; result: { version: number } };
      status: { code: number; json: { vault: { version: number }; watchdog: { notify: boolean; periodUsec: number } } };
      tamper: { healedMs: number; counters: { tampers: number; heals: number } };
      verifyAfterHeal: number;
      journald: { warning: { priority: string; identifier: string; event: string | null; level: string | null }[]; all: { priority: string; identifier: string; event: string | null; level: string | null }[] };
      watchdog: { before: Record<string, string>; after: Record<string, string>; restartMs: number };
      verifyAfterRestart: { code: number };
      statusAfterRestart: { ok: boolean; result: { vault: { version: number } } };
      audit: { code: number };
    };
    assert.equal(s.ready.ActiveState, 'active');
    assert.equal(s.ready.SubState, 'running');
    assert.match(s.ready.StatusText ?? '', /vault v1 .* intact/, 'STATUS= shows the verified vault once READY=1 was sent');
    assert.equal(s.deploy.ok, true, `deploy over the socket: ${JSON.stringify(s.deploy)}`);
    assert.equal(s.deploy.result.version, 2);
    assert.equal(s.status.code, 0);
    assert.equal(s.status.json.vault.version, 2);
    assert.equal(s.status.json.watchdog.notify, true);
    assert.equal(s.status.json.watchdog.periodUsec, 3_000_000, 'WatchdogSec=3s of the e2e drop-in reached the daemon');
    assert.ok(s.tamper.counters.tampers >= 1 && s.tamper.counters.heals >= 1, JSON.stringify(s.tamper));
    assert.equal(s.verifyAfterHeal, 0, 'vault verifies after the heal');
    // journald: priorities from the <N> prefix, the unit's SyslogIdentifier, the JSON line intact in MESSAGE.
    const tamperEntry = s.journald.warning.find((e) => e.event === 'tamper');
    assert.equal(tamperEntry?.priority, '3', `the tamper error has PRIORITY=3: ${JSON.stringify(s.journald.warning)}`);
    assert.ok(s.journald.warning.length > 0 && s.journald.warning.every((e) => Number(e.priority) <= 4 && (e.level === 'warn' || e.level === 'error' || e.level === 'fatal')), `-p warning shows only warnings and errors: ${JSON.stringify(s.journald.warning)}`);
    assert.ok(s.journald.all.every((e) => e.identifier === 'omnimind-sentinel'), `SYSLOG_IDENTIFIER=omnimind-sentinel on every line: ${JSON.stringify(s.journald.all.slice(0, 5))}`);
    assert.equal(s.journald.all.find((e) => e.event === 'ready')?.priority, '6', 'the ready line is PRIORITY=6 (info)');
    assert.ok(s.journald.all.every((e) => e.level !== null), 'every MESSAGE is the JSON line, fields queryable with journalctl -o json');
    assert.ok(Number(s.watchdog.after.NRestarts) >= 1, 'systemd restarted the hung daemon');
    assert.notEqual(s.watchdog.after.MainPID, s.watchdog.before.MainPID);
    assert.ok((result.journal ?? []).some((l) => /Watchdog timeout/.test(l)), `the restart was the watchdog's: ${context}`);
    assert.equal(s.verifyAfterRestart.code, 0, 'vault verifies after the restart');
    assert.equal(s.statusAfterRestart.ok, true);
    assert.equal(s.statusAfterRestart.result.vault.version, 2);
    assert.equal(s.audit.code, 0, 'audit chain intact across the restart');
    t.diagnostic(`boot-to-poweroff ${String(boot.ms)} ms; tamper healed in ${String(s.tamper.healedMs)} ms; SIGSTOP to restarted ${String(s.watchdog.restartMs)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// What a container needs for eBPF (the host's BTF bound in, bpf and perf_event_open not filtered by
// nspawn, CAP_BPF and CAP_PERFMON, tracefs mounted by ebpf-tracefs.service); the shipped unit must allow the rest itself.
const EBPF_CONTAINER_ARGS = ['--bind-ro=/sys/kernel/btf:/sys/kernel/btf', '--system-call-filter=bpf perf_event_open', '--capability=CAP_BPF,CAP_PERFMON'];

test('the eBPF engine under the shipped unit: mode ebpf, no bpftrace, a SIGKILLed target seen in the kernel', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  if (needs(t, bpfEngineUnavailable() === null, `the eBPF engine (${bpfEngineUnavailable() ?? ''})`)) return;
  const d = await prepareE2eDirs('sentinel-nspawn-ebpf-');
  const { dir, etc, e2e, out, src } = d;
  try {
    await copyFile(join(fixtures, 'ebpf-sentinel.json'), join(etc, 'sentinel.json'));
    await writeFile(join(src, 'phi.py'), 'phi = 1\n');
    signE2eRelease(d, 1);
    await copyFile(join(fixtures, 'setup.sh'), join(e2e, 'setup.sh'));
    const paths = { node: process.execPath, cli: '/opt/omnimind-sentinel/dist/src/cli/main.js', docs: '/opt/omnimind-sentinel' };
    await writeFile(join(dir, 'omnimind-sentinel.service'), renderUnit(await readFile(join(root, 'systemd', 'omnimind-sentinel.service'), 'utf8'), paths));
    await writeFile(join(dir, 'omnimind.slice'), renderUnit(await readFile(join(root, 'systemd', 'omnimind.slice'), 'utf8'), paths));
    await writeNotifyDropIn(join(dir, 'notify.conf'));
    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      args: [
        ...EBPF_CONTAINER_ARGS,
        ...e2eBinds(d),
        `--bind-ro=${join(dir, 'omnimind-sentinel.service')}:/etc/systemd/system/omnimind-sentinel.service`,
        `--bind-ro=${join(dir, 'omnimind.slice')}:/etc/systemd/system/omnimind.slice`,
        `--bind-ro=${join(dir, 'notify.conf')}:/etc/systemd/system/omnimind-sentinel.service.d/e2e-notify.conf`,
        `--bind-ro=${join(fixtures, 'sentinel-e2e-setup.service')}:/etc/systemd/system/sentinel-e2e-setup.service`,
        `--bind-ro=${join(fixtures, 'ebpf-tracefs.service')}:/etc/systemd/system/ebpf-tracefs.service`,
        `--bind-ro=${join(fixtures, 'ebpf-reporter.service')}:/etc/systemd/system/ebpf-reporter.service`,
      ],
      wants: ['ebpf-tracefs.service', 'sentinel-e2e-setup.service', 'omnimind-sentinel.service', 'ebpf-reporter.service'],
    });
    const result = await reporterResult<{ ok: boolean; errors: string[]; steps: Record<string, unknown>; journal?: string[] }>(boot, out, 'ebpf.json', BOOT_TIMEOUT_MS);
    const context = `errors: ${result.errors.join('\n')}\nsteps: ${JSON.stringify(result.steps)}\njournal:\n${(result.journal ?? []).join('\n')}`;
    assert.equal(result.ok, true, context);
    const s = result.steps as { ebpf: { mode: string; reason: string | null; loadMs: number }; target: { mode: string }; flagTracer: string; statusText: string; bpftrace: number; kills: { via: string; signal: number | null; modeAfter: string }[] };
    assert.equal(s.ebpf.mode, 'ebpf', `the engine loads under the unit: ${String(s.ebpf.reason)}\n${context}`);
    assert.equal(s.target.mode, 'ebpf', context);
    assert.equal(s.flagTracer, 'attached', context);
    assert.match(s.statusText, /ebpf: on \(/, 'STATUS= says the engine is on');
    assert.equal(s.bpftrace, 1, 'no bpftrace process in the container');
    assert.deepEqual(s.kills, [{ via: 'ebpf', signal: 9, modeAfter: 'ebpf' }, { via: 'ebpf', signal: 9, modeAfter: 'ebpf' }], context);
    t.diagnostic(`engine loaded in ${String(s.ebpf.loadMs)} ms under the unit; boot-to-poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
