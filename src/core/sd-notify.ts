// The sd_notify protocol (sd_notify(3)) as pure values: message text, socket address and watchdog settings.
import { SentinelError } from './errors.js';
import { WATCHDOG_USEC_BOUNDS } from './config-limits.js';

// Why: the fields this daemon sends; each becomes one `KEY=value` line of a datagram.
export interface NotifyState {
  ready?: boolean;
  stopping?: boolean;
  reloading?: boolean;
  watchdog?: boolean;
  status?: string;
  mainPid?: number;
  /** CLOCK_MONOTONIC in microseconds; required by systemd >= 253 with RELOADING=1. */
  monotonicUsec?: bigint;
}

// Why: STATUS= must stay one line; a newline would start a new (attacker-chosen) assignment.
export function oneLine(text: string, maxChars = 512): string {
  const flat = text.replace(/[\r\n\0]+/g, ' ').trim();
  return flat.length > maxChars ? `${flat.slice(0, maxChars - 1)}…` : flat;
}

// Why: builds the datagram text in a fixed order so tests can compare it byte for byte.
export function formatNotify(state: NotifyState): string {
  const lines: string[] = [];
  if (state.ready === true) lines.push('READY=1');
  if (state.reloading === true) lines.push('RELOADING=1');
  if (state.stopping === true) lines.push('STOPPING=1');
  if (state.monotonicUsec !== undefined) lines.push(`MONOTONIC_USEC=${state.monotonicUsec.toString()}`);
  if (state.mainPid !== undefined) lines.push(`MAINPID=${String(state.mainPid)}`);
  if (state.status !== undefined) lines.push(`STATUS=${oneLine(state.status)}`);
  if (state.watchdog === true) lines.push('WATCHDOG=1');
  if (lines.length === 0) throw new SentinelError('internal', 'empty sd_notify message', { where: 'sd-notify' });
  return `${lines.join('\n')}\n`;
}

// Why: parses a datagram back into assignments (used by protocol tests and by the e2e reporter).
export function parseNotify(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of message.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new SentinelError('usage', `sd_notify line without '=': ${JSON.stringify(line)}`, { where: 'sd-notify' });
    out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

export type NotifyAddress = { kind: 'path'; path: string } | { kind: 'abstract'; name: string };

// Why: NOTIFY_SOCKET is a filesystem path or '@name' (abstract); anything else is refused, unset means "not under systemd".
export function parseNotifySocket(value: string | undefined): NotifyAddress | null {
  if (value === undefined || value === '') return null;
  if (value.startsWith('@')) {
    if (value.length < 2) throw new SentinelError('usage', 'NOTIFY_SOCKET abstract name is empty', { where: 'NOTIFY_SOCKET' });
    return { kind: 'abstract', name: value.slice(1) };
  }
  if (value.startsWith('/')) return { kind: 'path', path: value };
  throw new SentinelError('usage', `NOTIFY_SOCKET must be an absolute path or @name, got ${JSON.stringify(value)}`, { where: 'NOTIFY_SOCKET' });
}

// Why: the address string the native addon and systemd-notify take ('@' prefix = abstract).
export function addressString(address: NotifyAddress): string {
  return address.kind === 'abstract' ? `@${address.name}` : address.path;
}

export interface WatchdogSettings {
  /** The full watchdog period from WATCHDOG_USEC. */
  periodUsec: number;
  /** How often to send WATCHDOG=1: half the period, as sd_watchdog_enabled(3) advises. */
  pingIntervalMs: number;
}

// Why: sd_watchdog_enabled(3): enabled only when WATCHDOG_USEC is valid and WATCHDOG_PID is unset or names this process.
export function parseWatchdog(usec: string | undefined, pid: string | undefined, ownPid: number): WatchdogSettings | null {
  if (usec === undefined || usec === '') return null;
  if (!/^[0-9]+$/.test(usec)) throw new SentinelError('usage', `WATCHDOG_USEC is not an integer: ${JSON.stringify(usec)}`, { where: 'WATCHDOG_USEC' });
  const periodUsec = Number(usec);
  if (periodUsec < WATCHDOG_USEC_BOUNDS.min || periodUsec > WATCHDOG_USEC_BOUNDS.max) {
    throw new SentinelError('usage', `WATCHDOG_USEC ${usec} is outside ${String(WATCHDOG_USEC_BOUNDS.min)}..${String(WATCHDOG_USEC_BOUNDS.max)}`, { where: 'WATCHDOG_USEC' });
  }
  if (pid !== undefined && pid !== '') {
    if (!/^[0-9]+$/.test(pid)) throw new SentinelError('usage', `WATCHDOG_PID is not an integer: ${JSON.stringify(pid)}`, { where: 'WATCHDOG_PID' });
    if (Number(pid) !== ownPid) return null;
  }
  return { periodUsec, pingIntervalMs: Math.max(1, Math.floor(periodUsec / 2000)) };
}
