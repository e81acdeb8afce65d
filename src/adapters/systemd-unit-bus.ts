// A unit's state over D-Bus through the native addon (native/src/systemd-unit.c): the properties
// `systemctl show` gave, read from systemd's manager without a process, and a bounded wait for
// systemd's next signal about the unit instead of a poll. When the addon, its sd-bus part or the bus
// itself is missing or fails, the caller reads the unit with `systemctl show` instead (systemctl.ts).
import { isSystemError, loadNative } from './native.js';
import { systemdBusProblem } from './systemd-bus.js';
import type { UnitState } from './systemctl.js';

interface RawUnitState {
  activeState: string;
  subState: string;
  result: string;
  mainPid: number;
  job: number;
  nRestarts: number;
  watchdogSignal: number;
  watchdogUsec: number;
  invocationId: string;
  key: string;
  changed: boolean;
  bus: string;
}

/** The addon's read (present when it was built with libsystemd-dev). */
export interface UnitStateAddon {
  unitStateAsync?(unit: string, timeoutMs: number, waitMs: number, known: string): Promise<RawUnitState>;
}

/** The state, with `key` (what changes when anything the sentinel decides on changes) and the connection used. */
export type BusUnitState = UnitState & { key: string; bus: string };

/** Read (after the wait, when one was asked), or not asked: `fallback` says why, and the caller runs systemctl. */
export type BusUnitRead = { state: BusUnitState } | { fallback: string };

/** Why the addon cannot read a unit over D-Bus, or null when it can. */
export function unitBusProblem(): string | null {
  const problem = systemdBusProblem();
  if (problem !== null) return problem;
  return typeof (loadNative() as UnitStateAddon).unitStateAsync === 'function' ? null : 'the native addon has no unitStateAsync (rebuild it)';
}

// Why: while a restarted unit starts, a `systemctl show` process per poll competes with that start for the
// host's CPUs (docs/EBPF.md#the-unit-state-over-d-bus). `waitMs` > 0 with the `known` key of the last read:
// answers at once when the unit is no longer in that state, else at systemd's signal of a change or after
// waitMs, with the unit as it then is. Every failure is a fallback: systemctl reads the unit and says what
// went wrong in its own words.
export async function unitStateOverBus(unit: string, opts: { timeoutMs: number; waitMs?: number; known?: string }): Promise<BusUnitRead> {
  const problem = unitBusProblem();
  if (problem !== null) return { fallback: problem };
  const addon = loadNative() as UnitStateAddon;
  try {
    const r = await addon.unitStateAsync!(unit, Math.max(1, Math.min(600_000, Math.round(opts.timeoutMs))), Math.max(0, Math.min(600_000, Math.round(opts.waitMs ?? 0))), opts.known ?? '');
    // WatchdogUSec=infinity is UINT64_MAX: a watchdog that never fires is none, as systemctl's "infinity" reads
    const watchdogUsec = r.watchdogUsec >= Number.MAX_SAFE_INTEGER ? 0 : r.watchdogUsec;
    const state: BusUnitState = { activeState: r.activeState, subState: r.subState, result: r.result, mainPid: r.mainPid, job: r.job === 0 ? null : r.job, nRestarts: r.nRestarts, watchdogSignal: r.watchdogSignal, watchdogUsec, invocationId: r.invocationId, key: r.key, bus: r.bus };
    return { state };
  } catch (e) {
    if (!isSystemError(e)) throw e;
    const x = e as { dbusName?: string; dbusMessage?: string; systemBusCode?: string; systemBusSyscall?: string };
    const also = x.systemBusCode === undefined ? '' : `; the system bus: ${x.systemBusCode} (${x.systemBusSyscall ?? '?'})`;
    return { fallback: x.dbusName === undefined ? `${e.message}${also}` : `${x.dbusName}: ${x.dbusMessage ?? ''}` };
  }
}
