// systemd through `systemctl`, from this one file: restart a unit and read its state (over D-Bus first:
// systemd-bus.ts, systemd-unit-bus.ts), read its MainPID, start and stop a slice, set its properties,
// reload unit files. Every call is bounded and a failure names the command.
import { SentinelError } from '../core/errors.js';
import { runCommand, type CommandResult } from './process.js';
import { restartOverBus } from './systemd-bus.js';
import { unitStateOverBus } from './systemd-unit-bus.js';

/** Bound of the quick queries (show, start, set-property, daemon-reload), ms. */
export const SYSTEMCTL_TIMEOUT_MS = 15_000;

// Why: one error shape for every failed systemctl process, the restart's fallback included: no systemctl is
// not-found, "access denied" not-permitted, the rest unavailable. `command` names it; `firstLine`: only
// the first line of what it said is shown.
function systemctlFailure(r: CommandResult, command: string, where: string, timeoutMs: number, firstLine = false): SentinelError {
  const said = (r.stderr || r.stdout || r.message || `exit ${r.exitCode ?? 'unknown'}`).trim();
  const msg = r.timedOut ? `timed out after ${timeoutMs} ms` : firstLine ? (said.split('\n')[0] ?? '') : said;
  const code = r.startError === 'ENOENT' ? 'not-found' : /access denied|not permitted|permission/i.test(msg) ? 'not-permitted' : 'unavailable';
  return new SentinelError(code, `${command} failed: ${msg}`, { where });
}

// Why: every systemctl verb but the restart's fallback runs through here, bounded.
async function systemctl(args: readonly string[], where: string, timeoutMs = SYSTEMCTL_TIMEOUT_MS): Promise<string> {
  const r = await runCommand(['systemctl', ...args], { timeoutMs });
  if (!r.ok) throw systemctlFailure(r, `systemctl ${args.join(' ')}`, where, timeoutMs);
  return r.stdout;
}

// Why: systemd knows how to stop and start its unit; we only ask it to, at once (docs/EBPF.md#recovery).
export async function restartUnit(unit: string, timeoutMs = 60_000): Promise<{ ms: number }> {
  const t0 = performance.now();
  await systemctl(['restart', '--', unit], unit, timeoutMs);
  return { ms: performance.now() - t0 };
}

/** What `systemctl show` says about a unit right now. */
export interface UnitState {
  activeState: string;
  subState: string;
  /** systemd's result of the last run: success, signal, exit-code, watchdog, ... */
  result: string;
  mainPid: number;
  /** Id of a job queued or running for the unit, or null. */
  job: number | null;
  nRestarts: number;
  /** WatchdogSignal= as a number (SIGABRT: 6), and WatchdogSec= in µs (0: no watchdog). */
  watchdogSignal: number;
  watchdogUsec: number;
  /** The run's invocation id (32 hex digits; '' when the unit has none): names its journal lines. */
  invocationId: string;
}

/** A unit's state and how it was read: over D-Bus (`waited`: the read waited for a change, as asked) or by `systemctl show`. */
export type UnitRead = UnitState & { via: 'dbus' | 'systemctl'; waited: boolean; key: string; busProblem?: string };

// Why: the recovery of a unit target decides on what systemd is doing with it (docs/EBPF.md#who-does-what).
// Read over D-Bus without a process when the addon can (systemd-unit-bus.ts); with `wait`, the read waits up
// to waitMs for the unit to leave the state whose key the caller last saw. Else `systemctl show`, with what
// the bus left of the bound (the caller then sleeps itself: `waited` is false).
export async function unitState(unit: string, wait?: { waitMs: number; known: string }): Promise<UnitRead> {
  const t0 = performance.now();
  const waitMs = wait?.waitMs ?? 0;
  const bus = await unitStateOverBus(unit, { timeoutMs: SYSTEMCTL_TIMEOUT_MS, waitMs, known: wait?.known ?? '' });
  if ('state' in bus) return { ...bus.state, via: 'dbus', waited: waitMs > 0 };
  const left = Math.floor(SYSTEMCTL_TIMEOUT_MS + waitMs - (performance.now() - t0));
  if (left < 1) throw new SentinelError('unavailable', `reading ${unit} over D-Bus failed (${bus.fallback}) and no time is left for systemctl show (${SYSTEMCTL_TIMEOUT_MS} ms)`, { where: unit });
  return { ...(await unitStateBySystemctl(unit, left)), via: 'systemctl', waited: false, key: '', busProblem: bus.fallback };
}

// Why: where the addon or the bus is missing, `systemctl show` is how the unit is read.
async function unitStateBySystemctl(unit: string, timeoutMs: number): Promise<UnitState> {
  const out = await systemctl(['show', '-p', 'ActiveState,SubState,Result,MainPID,Job,NRestarts,WatchdogSignal,WatchdogUSec,InvocationID', '--', unit], unit, timeoutMs);
  const v = new Map(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const num = (k: string): number => {
    const n = Number(v.get(k) ?? '');
    return Number.isFinite(n) ? n : 0;
  };
  const job = v.get('Job') ?? '';
  return { activeState: v.get('ActiveState') ?? 'unknown', subState: v.get('SubState') ?? 'unknown', result: v.get('Result') ?? '', mainPid: num('MainPID'), job: job === '' ? null : Number(job), nRestarts: num('NRestarts'), watchdogSignal: num('WatchdogSignal'), watchdogUsec: timespanUsec(v.get('WatchdogUSec') ?? ''), invocationId: v.get('InvocationID') ?? '' };
}

const TIMESPAN_UNITS: Record<string, number> = { us: 1, usec: 1, ms: 1e3, msec: 1e3, s: 1e6, sec: 1e6, m: 60e6, min: 60e6, h: 3600e6, hr: 3600e6, d: 86_400e6, w: 604_800e6, M: 2_629_800e6, y: 31_557_600e6 };

// Why: `systemctl show` prints a time span as people read it ("3s", "1min 30s", "500ms"; "infinity", "0"), not
// in the property's µs: read as a number it was NaN, so a unit's watchdog was never seen. µs; 0 for none,
// infinity or text that is not a time span.
export function timespanUsec(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  let usec = 0;
  for (const part of t.split(/\s+/)) {
    const m = /^(\d+(?:\.\d+)?)([a-zA-Z]+)$/.exec(part);
    const unit = m === null ? undefined : TIMESPAN_UNITS[m[2] ?? ''];
    if (m === null || unit === undefined) return 0;
    usec += Number(m[1]) * unit;
  }
  return Math.round(usec);
}

/**
 * A restart queued, or refused because another job (an operator's stop or restart) is already queued for
 * the unit; `via` says how systemd was asked: over D-Bus by the addon, or by a systemctl process (and
 * then `busProblem` why not over D-Bus).
 */
export type QueuedRestart = ({ queued: true; ms: number } | { queued: false; ms: number; reason: string }) & { via: 'dbus' | 'systemctl'; busProblem?: string };

// Why: recovery never waits behind other jobs: the restart is queued (--no-block) and returns at once;
// --job-mode=fail leaves a stop or restart someone else queued alone instead of replacing it.
// `try-restart` is decided by systemd when it queues the job: a restart if the unit is active or
// activating (auto-restart is), nothing if it is inactive — so a unit stopped meanwhile stays stopped.
// Asked over D-Bus without a process when the addon can (src/adapters/systemd-bus.ts), else by systemctl.
export async function queueRestart(unit: string, timeoutMs = SYSTEMCTL_TIMEOUT_MS, verb: 'restart' | 'try-restart' = 'restart'): Promise<QueuedRestart> {
  const t0 = performance.now();
  const bus = await restartOverBus(unit, verb, timeoutMs);
  if (!('fallback' in bus)) return bus.queued ? { queued: true, ms: performance.now() - t0, via: 'dbus' } : { queued: false, ms: performance.now() - t0, reason: bus.reason, via: 'dbus' };
  // The call may have reached systemd: a job on the unit, or a unit (re)starting or up, is taken as ours
  // rather than asking for a second restart; one still failed or stopping with no job was not reached.
  if (bus.sent === true) {
    const st = await unitState(unit);
    if (st.job !== null || ((st.activeState === 'active' || st.activeState === 'activating') && st.subState !== 'auto-restart')) return { queued: true, ms: performance.now() - t0, via: 'dbus', busProblem: `${bus.fallback}; the unit then ${st.activeState}/${st.subState}${st.job === null ? '' : `, job ${String(st.job)}`}` };
  }
  // the whole call stays within timeoutMs: systemctl gets what the bus left
  const left = Math.floor(timeoutMs - (performance.now() - t0));
  if (left < 1) throw new SentinelError('unavailable', `${verb} ${unit} over D-Bus failed (${bus.fallback}) and no time is left for systemctl (${timeoutMs} ms)`, { where: unit });
  const r = await runCommand(['systemctl', verb, '--no-block', '--job-mode=fail', '--', unit], { timeoutMs: left });
  const ms = performance.now() - t0;
  const how = { via: 'systemctl' as const, busProblem: bus.fallback };
  if (r.ok) return { queued: true, ms, ...how };
  const said = (r.stderr || r.stdout || r.message).trim().split('\n')[0] ?? '';
  if (/is destructive|conflicting job/i.test(said)) return { queued: false, ms, reason: said, ...how };
  throw systemctlFailure(r, `systemctl ${verb} --no-block ${unit}`, unit, left, true);
}

// Why: a job's id says nothing of what it does; a stop someone queued must not pass for a start.
// The type of the unit's job (start, stop, restart, ...), or null when it has none any more.
export async function jobTypeOf(unit: string): Promise<string | null> {
  const out = await systemctl(['list-jobs', '--no-legend', '--plain', '--', unit], unit);
  for (const line of out.split('\n')) {
    const [, name, type] = line.trim().split(/\s+/);
    if (name === unit && type !== undefined) return type;
  }
  return null;
}

// Why: when a queued job does not finish, the error names what it waits for.
export async function jobsOf(unit: string): Promise<string> {
  const r = await runCommand(['systemctl', 'list-jobs', '--after', '--no-legend', '--', unit], { timeoutMs: SYSTEMCTL_TIMEOUT_MS });
  return r.stdout.trim().split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l !== '').slice(0, 5).join('; ');
}

// Why: a unit target's process is systemd's MainPID; 0 means the unit has no running main process.
export async function mainPidOfUnit(unit: string): Promise<number> {
  const out = await systemctl(['show', '-p', 'MainPID', '--value', '--', unit], unit);
  const n = Number(out.trim());
  if (!Number.isInteger(n) || n < 0) throw new SentinelError('internal', `systemctl printed no MainPID: ${JSON.stringify(out.slice(0, 40))}`, { where: unit });
  return n;
}

// Why: under systemd the protection slice is a unit; starting it makes systemd create its cgroup (docs/PROTECTION.md).
export async function startUnit(unit: string): Promise<void> {
  await systemctl(['start', '--', unit], unit);
}

// Why: MemoryLow=/MemoryMin= set through systemd stay set; written behind its back they would be undone.
export async function setUnitProperties(unit: string, properties: Record<string, string>): Promise<void> {
  await systemctl(['set-property', '--runtime', unit, ...Object.entries(properties).map(([k, v]) => `${k}=${v}`)], unit);
}

// Why: `install-units` makes systemd read the unit files it just wrote; a host without systemd is not an
// error, but the caller says so. Null when it worked, else why not (systemctl's first line, or how it ended).
export async function daemonReload(): Promise<string | null> {
  const r = await runCommand(['systemctl', 'daemon-reload'], { timeoutMs: 30_000 });
  if (r.ok) return null;
  const line = r.stderr.split('\n').find((l) => l.trim() !== '')?.trim();
  return line ?? (r.startError !== null ? `cannot run systemctl: ${r.startError}` : r.timedOut ? 'timed out' : `exit ${String(r.exitCode ?? r.signal)}`);
}

// Why: `install-units --uninstall` stops units and removes their enablement links; without a running systemd
// only the links go. The units go in one transaction: stopped one by one, a backend still restarting
// (Restart=always) would start the sentinel again through its Wants= after the sentinel was stopped.
// True when systemctl accepted it.
export async function disableNow(units: readonly string[]): Promise<boolean> {
  const state = await runCommand(['systemctl', 'is-system-running'], { timeoutMs: SYSTEMCTL_TIMEOUT_MS });
  const booted = !/offline|not been booted/i.test(`${state.stdout}${state.stderr}`);
  const r = await runCommand(['systemctl', 'disable', ...(booted ? ['--now'] : []), '--', ...units], { timeoutMs: 60_000 });
  return r.ok;
}

// Why: a unit that failed stays listed (`not-found failed`) after its file is gone until its failure is reset.
export async function resetFailed(units: readonly string[]): Promise<void> {
  await runCommand(['systemctl', 'reset-failed', '--', ...units], { timeoutMs: SYSTEMCTL_TIMEOUT_MS });
}

// Why: systemd never stops a slice by itself; it stays active (its cgroups too) until stopped, which stops
// every unit in it. The units in an active `slice` that still run (a unit in a slice requires it:
// RequiredBy=), or null when the slice is not active or systemd cannot be asked.
export async function runningInSlice(slice: string): Promise<string[] | null> {
  const r = await runCommand(['systemctl', 'show', '-p', 'ActiveState', '-p', 'RequiredBy', '--', slice], { timeoutMs: SYSTEMCTL_TIMEOUT_MS });
  const props = new Map(r.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  if (!r.ok || props.get('ActiveState') !== 'active') return null;
  const units = (props.get('RequiredBy') ?? '').split(/\s+/).filter((u) => u !== '');
  if (units.length === 0) return [];
  // One state per unit, in order; is-active exits non-zero when any is inactive, which is no error here.
  const states = (await runCommand(['systemctl', 'is-active', '--', ...units], { timeoutMs: SYSTEMCTL_TIMEOUT_MS })).stdout.split('\n');
  return units.filter((_, i) => !['inactive', 'failed', ''].includes((states[i] ?? '').trim()));
}

// Why: `install-units --uninstall` stops the slice once nothing is left in it. True when systemctl accepted it.
export async function stopUnit(unit: string): Promise<boolean> {
  return (await runCommand(['systemctl', 'stop', '--', unit], { timeoutMs: 60_000 })).ok;
}
