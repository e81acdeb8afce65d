// The sentinel's restart of a unit target never waits for the unit's RestartSec=, and a backend that
// systemd is still starting when the sentinel starts costs no restart. Under a real systemd
// (systemd-nspawn) with the units as `sentinel install-units --sample-backend` installs them:
//   1. the socket, the backend and the sentinel started in one transaction (the backend is ordered after
//      the sentinel, as at boot): the sentinel waits for the backend's own start job, spends no restart;
//   2. the race of a SIGKILL with the unit's stop hook, made deterministic by two gates (the reporter,
//      test/fixtures/nspawn/restart-race-reporter.ts, says how): the sentinel's restart job meets the unit
//      only once systemd holds it in `auto-restart` for RestartSec=1h; the backend must still come back,
//      restarted by the sentinel (systemd's NRestarts unchanged);
//   3. an operator's `systemctl stop` whose job is over before the sentinel asks systemd about the exit
//      (the unit runs nothing on its stop, so this is the usual order): the unit stays stopped;
//   4. an operator's `systemctl stop` landing between the sentinel's read of `auto-restart` and its restart
//      through it (held there by a third gate): the unit stays stopped, the target is "stopped outside";
//   5. a stop job pending when the sentinel starts: the target is not counted "starting" nor waited for,
//      and the unit, once stopped, is not restarted; a restart asked meanwhile (job mode fail) is refused;
// and the sentinel's restarts and its reads of the unit go over D-Bus (native/src/systemd-bus.c,
// systemd-unit.c): no `systemctl restart`, `try-restart` or `show` process while it recovers the unit (a
// `systemctl` shim in its PATH logs every call; the holds of 3 and 4 are a proxy's on its D-Bus calls).
//   6. an operator's stop of the backend systemd is starting while the sentinel waits for that start: the
//      unit is not restarted.
//   7. the unit state read over D-Bus says what `systemctl show` says, waits from a known state until its
//      bound or until systemd signals a change, and is `systemctl show`'s own with the addon switched off;
//      with the private socket hidden it is read over the system bus, where a wait is a sleep to its bound.
//   8. while a SIGKILLed backend restarts, its startup slowed, the sentinel holds no connection to systemd
//      between its reads of the unit (the proxy counts its connections).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { needsNspawn } from '../helpers/nspawn.js';
import { BACKEND_BOOT_TIMEOUT_MS, backendReportContext, bootBackendUnits, signBackendOnly } from '../helpers/nspawn-backend.js';
import { prepareE2eDirs } from '../helpers/nspawn-inputs.js';
import { timespanUsec, type UnitRead } from '../../src/adapters/systemctl.js';

type Show = Record<string, string>;
type Entry = Record<string, unknown>;
const restartCalls = (calls: string[]): string[] => calls.filter((c) => /^(try-)?restart\b/.test(c));
const showCalls = (calls: string[]): string[] => calls.filter((c) => /^show\b/.test(c));
interface Steps {
  boot: { target: { state: string; restarts: number; pid: number | null }; recovery: Record<string, unknown>[]; show: Show };
  race: { before: Show; queued: Show; held: Show; after: Show; back: boolean; healthy: boolean; recovery: Entry[]; calls: string[]; restartLog: Entry[] };
  operatorStop: { stopped: Show; end: Record<string, unknown> | null; after: Show; target?: { state: string }; recovery: Record<string, unknown>[] };
  kickStop: { held: Show; stopped: Show; end: Entry | null; after: Show; target?: { state: string }; recovery: Entry[]; calls: string[]; kick: Entry[] };
  stopWhileWaited: { waiting: Show; end: Record<string, unknown> | null; after: Show; target?: { state: string; restarts: number }; recovery: Record<string, unknown>[] };
  stopAtStart: { stopping: Show; refused: Entry; atStart?: { state: string; restarts: number }; end: Record<string, unknown> | null; after: Show; target?: { state: string; restarts: number }; recovery: Record<string, unknown>[] };
  quietStart: { before: Show; starting: Show; still: Show; samples: number[]; end: Entry | null; target?: { state: string; pid: number | null } };
  unitBus: { bus: UnitRead; shown: Show; unchanged: UnitRead; probeBefore: UnitRead; probeAfter: UnitRead | { error: string }; fallback: Partial<UnitRead> & { error?: string }; systemBus: { error?: string; read?: { state?: UnitRead }; after?: { state?: UnitRead } } };
}

test('unit target: the restart job that meets the unit in auto-restart still restarts it at once; a backend started by systemd after the sentinel costs no restart', { timeout: BACKEND_BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const d = await prepareE2eDirs('sentinel-restart-race-', ['engine']);
  const { dir } = d;
  try {
    await signBackendOnly(d);
    const result = await bootBackendUnits<Steps>(d, 'restart-race-reporter.service');
    const context = backendReportContext(result);
    assert.equal(result.ok, true, context);
    const { boot: atBoot, race } = result.steps;

    // 1. The backend's own start job was waited for, not replaced by a restart of the sentinel's budget.
    assert.equal(atBoot.target.state, 'running', context);
    assert.equal(atBoot.target.restarts, 0, `no restart spent on a backend systemd was starting: ${context}`);
    assert.deepEqual(atBoot.recovery.filter((e) => e.event === 'recovery-started'), [], context);

    // 2. The job met the unit in its stop hook, the unit then went to auto-restart (held there by RestartSec=1h)...
    assert.equal(race.queued.SubState, 'stop-post', context);
    assert.equal(race.held.SubState, 'auto-restart', context);
    assert.ok(race.recovery.some((e) => e.event === 'recovery-started' && e.action === 'restart --no-block --job-mode=fail'), `the sentinel restarted it: ${context}`);
    // ...over D-Bus, without a systemctl process.
    assert.ok(race.restartLog.length > 0 && race.restartLog.every((e) => e.via === 'dbus'), `the restart job was queued over D-Bus: ${context}`);
    assert.deepEqual(restartCalls(race.calls), [], `no systemctl restart process: ${context}`);
    // ...and waited for the new process reading the unit over D-Bus, without a systemctl show process.
    assert.deepEqual(showCalls(race.calls), [], `no systemctl show process while the sentinel waited for the new process: ${context}`);
    // ...and the sentinel still brought it back, not systemd's Restart= after RestartSec=.
    assert.equal(race.back, true, `the backend came back: ${context}`);
    assert.equal(race.after.ActiveState, 'active', context);
    assert.equal(race.after.NRestarts, race.before.NRestarts, `systemd's own Restart= did not run: ${context}`);
    assert.equal(race.healthy, true, context);
    assert.ok(race.recovery.some((e) => e.event === 'recovered' && e.pid === Number(race.after.MainPID)), `"recovered" names the new main process: ${context}`);

    // 3. The operator's stop was over when the sentinel asked about the exit: it stands.
    const { operatorStop, kickStop, stopAtStart } = result.steps;
    assert.equal(operatorStop.stopped.ActiveState, 'inactive', context);
    assert.equal(operatorStop.end?.event, 'stopped-outside', `the sentinel left the stopped unit alone: ${context}`);
    assert.deepEqual(operatorStop.recovery.filter((e) => e.event === 'recovery-started' && e.action === 'restart --no-block --job-mode=fail'), [], `no restart of a unit an operator stopped: ${context}`);
    assert.notEqual(operatorStop.after.ActiveState, 'active', context);
    assert.equal(operatorStop.target?.state, 'down', context);

    // 4. The operator's stop came after the sentinel read auto-restart and before its restart through it: it stands.
    assert.equal(kickStop.held.SubState, 'auto-restart', context);
    // the sentinel did restart through auto-restart after the stop (over D-Bus), and systemd's try-restart left the stopped unit alone
    assert.equal(kickStop.kick.length, 1, `one restart through auto-restart: ${context}`);
    assert.equal(kickStop.kick[0]?.via, 'dbus', context);
    assert.deepEqual(restartCalls(kickStop.calls), [], `no systemctl try-restart process: ${context}`);
    assert.notEqual(kickStop.stopped.ActiveState, 'active', context);
    assert.equal(kickStop.end?.event, 'stopped-outside', `the sentinel left the stopped unit alone: ${context}`);
    assert.notEqual(kickStop.after.ActiveState, 'active', `the operator's stop was not overridden: ${context}`);
    assert.equal(kickStop.after.Job, '', context);
    assert.equal(kickStop.target?.state, 'down', context);

    // 5. A stop job pending at the sentinel's start: not "starting", not waited for, not restarted.
    assert.equal(stopAtStart.stopping.ActiveState, 'deactivating', context);
    assert.equal(stopAtStart.refused.queued, false, `a restart with job mode fail does not replace the queued stop: ${context}`);
    assert.equal(stopAtStart.refused.via, 'dbus', context);
    assert.match(String(stopAtStart.refused.reason), /destructive/i, context);
    assert.equal(stopAtStart.atStart?.state, 'down', `a unit being stopped is not counted as starting: ${context}`);
    assert.equal(stopAtStart.end?.event, 'stopped-outside', context);
    assert.deepEqual(stopAtStart.recovery.filter((e) => e.event === 'recovery-started'), [], `no restart of a unit an operator stopped: ${context}`);
    assert.notEqual(stopAtStart.after.ActiveState, 'active', context);
    assert.equal(stopAtStart.target?.restarts, 0, context);

    // 6. Stopped by the operator while the sentinel waited for systemd's start of it: not restarted.
    const waited = result.steps.stopWhileWaited;
    assert.equal(waited.waiting.ActiveState, 'activating', context);
    assert.equal(waited.end?.event, 'stopped-outside', `the sentinel left the stopped unit alone: ${context}`);
    assert.deepEqual(waited.recovery.filter((e) => e.event === 'recovery-started'), [], `no restart of a unit an operator stopped: ${context}`);
    assert.notEqual(waited.after.ActiveState, 'active', context);
    assert.equal(waited.target?.state, 'down', context);

    // 8. While the restarted backend started, the sentinel was connected to systemd only for its reads, not
    // waiting on a connection for PID 1's signals (before: connected all along).
    const { quietStart } = result.steps;
    assert.equal(quietStart.still.ActiveState, 'activating', `every sample was taken while the new process started: ${context}`);
    assert.equal(quietStart.still.MainPID, quietStart.starting.MainPID, context);
    assert.equal(quietStart.samples.length, 40, context);
    const connected = quietStart.samples.filter((n) => n > 0).length;
    assert.ok(connected < quietStart.samples.length / 2, `the sentinel was connected to systemd in ${String(connected)} of ${String(quietStart.samples.length)} samples: ${context}`);
    assert.equal(quietStart.end?.event, 'recovered', context);
    assert.equal(quietStart.end?.pid, Number(quietStart.starting.MainPID), `"recovered" names the new process, once active: ${context}`);

    // 7. The unit state over D-Bus is systemd's, read without a process.
    const { bus, shown, unchanged, probeBefore, probeAfter, fallback } = result.steps.unitBus;
    assert.equal(bus.via, 'dbus', context);
    assert.equal(bus.activeState, 'active', context);
    const asShown = { activeState: shown.ActiveState, subState: shown.SubState, result: shown.Result, mainPid: Number(shown.MainPID), job: shown.Job === '' ? null : Number(shown.Job), nRestarts: Number(shown.NRestarts), watchdogSignal: Number(shown.WatchdogSignal), watchdogUsec: timespanUsec(shown.WatchdogUSec ?? ''), invocationId: shown.InvocationID };
    const fields = (r: Partial<UnitRead>): Record<string, unknown> => Object.fromEntries(Object.keys(asShown).map((k) => [k, r[k as keyof UnitRead]]));
    assert.deepEqual(fields(bus), asShown, `the bus read says what systemctl show says: ${context}`);
    assert.ok(bus.watchdogUsec > 0 && /^[0-9a-f]{32}$/.test(bus.invocationId), context);
    // a wait from the state just read, with nothing changing: the same state once its bound is over
    assert.equal(unchanged.via, 'dbus', context);
    assert.equal(unchanged.waited, true, context);
    assert.equal(unchanged.key, bus.key, context);
    // a wait bounded at 10 minutes ended at systemd's signal that the probe unit was stopping
    assert.equal(probeBefore.activeState, 'active', context);
    assert.ok(!('error' in probeAfter), `the wait for a change answered: ${context}`);
    assert.equal(probeAfter.via, 'dbus', context);
    assert.notEqual(probeAfter.key, probeBefore.key, context);
    // the first change systemd signals is the stop: its job queued, or the unit already deactivating
    assert.ok(probeAfter.job !== null || probeAfter.activeState !== 'active', context);
    // the addon switched off: systemctl show, and why not the bus
    assert.equal(fallback.error, undefined, context);
    assert.equal(fallback.via, 'systemctl', context);
    assert.match(String(fallback.busProblem), /native addon is not loaded/, context);
    assert.deepEqual(fields(fallback), fields(bus), `the fallback reads the same state: ${context}`);
    // systemd's private socket hidden: the system bus, the same state, and a wait there that ends at its bound
    const { systemBus } = result.steps.unitBus;
    assert.equal(systemBus.error, undefined, context);
    assert.equal((systemBus.read?.state as { bus?: string } | undefined)?.bus, 'system', context);
    assert.deepEqual(fields(systemBus.read?.state ?? {}), fields(bus), context);
    assert.equal((systemBus.after?.state as { bus?: string } | undefined)?.bus, 'system', context);
    assert.equal(systemBus.after?.state?.key, systemBus.read?.state?.key, context);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
