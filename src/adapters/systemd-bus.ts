// systemd's restart jobs over D-Bus through the native addon (native/src/systemd-bus.c): the
// sentinel asks the manager itself, over its private socket, instead of spawning `systemctl`. What
// systemd answers keeps systemctl's meaning; when the addon, its sd-bus part or the bus itself is
// missing or fails, the caller falls back to the systemctl process (src/adapters/systemctl.ts).
import { SentinelError } from '../core/errors.js';
import { isSystemError, loadNative } from './native.js';

/** The addon's call (present when it was built with libsystemd-dev). */
export interface SystemdBusAddon {
  restartUnitAsync?(method: 'RestartUnit' | 'TryRestartUnit', unit: string, mode: 'fail' | 'replace', timeoutMs: number): Promise<{ job: string; bus: string }>;
  /** Null when built in, else why not. */
  systemdBusSupport?: string | null;
}

/**
 * Queued (the job's object path and the connection: systemd's private socket or the system bus),
 * refused by systemd because another job is queued for the unit, or not asked: `fallback` says why
 * (no addon, no libsystemd, the bus failed before the call was sent), and the caller spawns systemctl
 * instead. `sent`: the bus failed after the call was written (a reset, a lost reply): systemd may have
 * queued the job, so the caller looks at the unit before asking again.
 */
export type BusRestart = { queued: true; job: string; bus: string } | { queued: false; reason: string } | { fallback: string; sent?: true };

// Job mode "fail" refuses a job that would replace one already queued for the unit: systemd 252 answers
// TransactionIsDestructive ("... has 'stop' job queued, but 'restart' is included in transaction").
// TransactionJobsConflicting is what a transaction that cannot be merged gets.
const REFUSED = new Set(['org.freedesktop.systemd1.TransactionIsDestructive', 'org.freedesktop.systemd1.TransactionJobsConflicting']);
const DENIED = new Set(['org.freedesktop.DBus.Error.AccessDenied', 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired']);

/** Why the addon cannot restart over D-Bus, or null when it can. */
export function systemdBusProblem(): string | null {
  const addon = loadNative() as SystemdBusAddon | null;
  if (addon === null) return 'the native addon is not loaded';
  if (typeof addon.restartUnitAsync !== 'function') return addon.systemdBusSupport ?? 'the native addon has no restartUnitAsync (rebuild it)';
  return null;
}

// Why: a SIGKILLed backend is restarted at once; a systemctl process costs its own start on a host
// whose CPUs the backend's start needs (docs/EBPF.md#the-restart-job-over-d-bus). Throws a SentinelError only for an
// answer of systemd's that systemctl would also have failed on (no such unit, access denied, ...).
export async function restartOverBus(unit: string, verb: 'restart' | 'try-restart', timeoutMs: number): Promise<BusRestart> {
  const problem = systemdBusProblem();
  if (problem !== null) return { fallback: problem };
  const addon = loadNative() as SystemdBusAddon;
  const method = verb === 'restart' ? 'RestartUnit' : 'TryRestartUnit';
  try {
    const r = await addon.restartUnitAsync!(method, unit, 'fail', Math.max(1, Math.round(timeoutMs)));
    return { queued: true, job: r.job, bus: r.bus };
  } catch (e) {
    if (!isSystemError(e)) throw e;
    const name = (e as { dbusName?: string }).dbusName;
    const said = (e as { dbusMessage?: string }).dbusMessage ?? '';
    // no D-Bus error from the other side (no socket, disconnected, timed out) or a bus-level one: not systemd's word
    if (name === undefined || (!name.startsWith('org.freedesktop.systemd1.') && !DENIED.has(name))) {
      const system = (e as { systemBusCode?: string; systemBusSyscall?: string });
      const also = system.systemBusCode === undefined ? '' : `; the system bus: ${system.systemBusCode} (${system.systemBusSyscall ?? '?'})`;
      const sent = (e as { sent?: boolean }).sent === true;
      return { fallback: name === undefined ? `${e.message}${also}` : `${name}: ${said}`, ...(sent ? { sent } : {}) };
    }
    if (REFUSED.has(name)) return { queued: false, reason: said === '' ? name : said };
    const code = DENIED.has(name) ? 'not-permitted' : 'unavailable';
    throw new SentinelError(code, `${method} ${unit} over D-Bus failed: ${said === '' ? name : `${said} (${name})`}`, { where: unit });
  }
}
