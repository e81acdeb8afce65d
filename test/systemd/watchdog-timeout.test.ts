// A unit target's watchdog timeout recorded by the sentinel, under a real systemd (systemd-nspawn) with the
// units as `sentinel install-units --sample-backend` installs them and one drop-in. /gil holds the GIL: no
// pings, systemd's watchdog fires. The sentinel must record "backend hung: watchdog" with the stacks from the
// hung invocation's journal, whichever detector saw the exit:
//   - abort (fixtures/nspawn/backend-watchdog.conf, WatchdogSec=3s): SIGABRT, faulthandler dumps every
//     thread's stack and the process ends by SIGABRT, seen by the kernel (eBPF);
//   - kill (fixtures/nspawn/backend-abort-timeout.conf): WatchdogSignal=SIGUSR1, on which faulthandler dumps
//     the stacks and the process stays hung, so systemd's SIGKILL after TimeoutAbortSec=2s ends it; seen by
//     the kernel (eBPF), which reports it like a crash's SIGKILL, and by the /proc poll (no eBPF in the
//     container), which reports only that the process is gone.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { needsNspawn } from '../helpers/nspawn.js';
import { needs } from '../helpers/env.js';
import { BACKEND_BOOT_TIMEOUT_MS, backendReportContext, bootBackendUnits, signBackendOnly } from '../helpers/nspawn-backend.js';
import { prepareE2eDirs } from '../helpers/nspawn-inputs.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { bpfEngineUnavailable } from '../../src/adapters/bpf-engine.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'nspawn');

type Show = Record<string, string>;
type Audit = Record<string, unknown>;
interface Steps {
  crash: { before: Show; notWatchdog: string | null; serviceEvents: Audit[] };
  watchdog: { before: Show; after: Show; hung: Audit | null; sentinelRunning: boolean; exit: Audit | null; recovery: Audit[]; systemd: Audit[]; health: { status: number } | null };
  audit: { code: number | null };
}

// What a container needs for eBPF: the host's BTF, bpf and perf_event_open not filtered, CAP_BPF and CAP_PERFMON, tracefs.
const EBPF_ARGS = ['--bind-ro=/sys/kernel/btf:/sys/kernel/btf', '--system-call-filter=bpf perf_event_open', '--capability=CAP_BPF,CAP_PERFMON', `--bind-ro=${join(fixtures, 'ebpf-tracefs.service')}:/etc/systemd/system/ebpf-tracefs.service`];

async function watchdogTimeout(t: TestContext, scenario: 'abort' | 'kill', detector: 'ebpf' | 'poll'): Promise<void> {
  if (needsNspawn(t)) return;
  if (detector === 'ebpf' && needs(t, bpfEngineUnavailable() === null, `the eBPF engine (${bpfEngineUnavailable() ?? ''})`)) return;
  const d = await prepareE2eDirs(`sentinel-watchdog-${scenario}-${detector}-`, ['engine']);
  const { dir } = d;
  try {
    await signBackendOnly(d);
    const conf = scenario === 'kill' ? 'backend-abort-timeout.conf' : 'backend-watchdog.conf';
    const dropIn = `--bind-ro=${join(fixtures, conf)}:/etc/systemd/system/omnimind-backend.service.d/zz-e2e-${conf}`;
    const result = await bootBackendUnits<Steps>(d, 'watchdog-kill-reporter.service', detector === 'ebpf' ? [...EBPF_ARGS, dropIn] : [dropIn], detector === 'ebpf' ? ['ebpf-tracefs.service'] : []);
    const context = backendReportContext(result);
    assert.equal(result.ok, true, context);
    // First an ordinary SIGKILL: restarted, recorded as no hang (with eBPF the journal was asked and said so).
    assert.deepEqual(result.steps.crash.serviceEvents, [], context);
    if (detector === 'ebpf') assert.ok(result.steps.crash.notWatchdog !== null, `the SIGKILL was looked up and found not to be a watchdog timeout: ${context}`);
    const w = result.steps.watchdog;
    const journal = (result.journal ?? []).join('\n');

    // What systemd did: the watchdog fired; SIGABRT ended the process, or SIGUSR1 did not and SIGKILL did.
    const signal = scenario === 'kill' ? 9 : 6;
    assert.equal(w.before.WatchdogSignal, scenario === 'kill' ? '10' : '6', context);
    assert.match(journal, /omnimind-backend\.service: Watchdog timeout/, context);
    if (scenario === 'kill') assert.match(journal, /State 'stop-watchdog' timed out\. Killing\./, `systemd had to SIGKILL it after TimeoutAbortSec=: ${context}`);
    else assert.doesNotMatch(journal, /State 'stop-watchdog' timed out/, context);
    assert.match(journal, scenario === 'kill' ? /Main process exited, code=killed, status=9\/KILL/ : /Main process exited, code=(killed|dumped), status=6\/ABRT/, context);
    assert.ok(w.systemd.some((e) => e.UNIT_RESULT === 'watchdog'), `systemd logged the hung run's result: ${JSON.stringify(w.systemd)}`);

    // Which detector saw the exit: the kernel knows the signal, the poll only that the process is gone.
    assert.equal(w.exit?.via, detector, context);
    if (detector === 'ebpf') assert.equal(w.exit?.signal, signal, context);

    // What the sentinel recorded: the hung run, its stacks (dumped on SIGUSR1), killed by SIGKILL.
    assert.ok(w.hung !== null, `"backend hung: watchdog" in the sentinel's audit log: ${context}`);
    assert.equal(w.hung.message, 'backend hung: watchdog');
    assert.equal(w.hung.result, 'watchdog');
    assert.equal(w.hung.source, 'sentinel');
    assert.equal(w.hung.unit, 'omnimind-backend.service');
    assert.equal(w.hung.invocationId, w.before.InvocationID, 'the evidence of the invocation that hung');
    assert.equal(w.hung.pid, Number(w.before.MainPID));
    const evidence = w.hung.evidence as string[];
    assert.ok(evidence.some((l) => /line \d+ in gil/.test(l)), `the stuck handler's frame, from the dump: ${JSON.stringify(evidence)}`);
    if (detector === 'ebpf') assert.equal(w.hung.exitStatus, scenario === 'kill' ? 'KILL' : 'ABRT', JSON.stringify(w.hung));
    // Only the kernel's report says the exit was by SIGKILL; the poll's record then says nothing of it.
    if (detector === 'ebpf' && scenario === 'kill') assert.match(String(w.hung.evidenceNote), /SIGKILL after TimeoutAbortSec=/, JSON.stringify(w.hung));
    if (scenario === 'abort') assert.equal(w.hung.evidenceNote, undefined, JSON.stringify(w.hung));
    // Who restarts: systemd after its watchdog's kill by the watchdog signal (or whenever the sentinel asked
    // systemd about the exit: the poll); the sentinel at once after an exit by SIGKILL, which it cannot tell
    // from a crash before it has restarted the unit.
    const started = w.recovery.filter((e) => e.event === 'recovery-started');
    const leftToSystemd = scenario === 'abort' || detector === 'poll';
    assert.ok(started.length >= 1 && started.every((e) => /^left to systemd \(watchdog timeout/.test(String(e.action)) === leftToSystemd), JSON.stringify(w.recovery));

    // And the backend is back, counted running by the sentinel.
    assert.notEqual(w.after.MainPID, w.before.MainPID);
    assert.equal(w.sentinelRunning, true, context);
    assert.equal(w.health?.status, 200);
    assert.equal(result.steps.audit.code, 0, 'audit chain intact');
    t.diagnostic(`${detector}: ${String(evidence.length)} stack lines; recovery: ${JSON.stringify(w.recovery.map((e) => [e.event, e.action]))}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('watchdog timeout ended by SIGABRT: recorded with its stacks (exit seen by eBPF)', { timeout: BACKEND_BOOT_TIMEOUT_MS + 30_000 }, (t) => watchdogTimeout(t, 'abort', 'ebpf'));

test('watchdog signal that does not end the backend, SIGKILL after TimeoutAbortSec=: recorded with its stacks (exit seen by eBPF)', { timeout: BACKEND_BOOT_TIMEOUT_MS + 30_000 }, (t) => watchdogTimeout(t, 'kill', 'ebpf'));

test('watchdog signal that does not end the backend, SIGKILL after TimeoutAbortSec=: recorded with its stacks (exit seen by the /proc poll)', { timeout: BACKEND_BOOT_TIMEOUT_MS + 30_000 }, (t) => watchdogTimeout(t, 'kill', 'poll'));
