// The system journal through `journalctl`, from this one file: the lines one invocation of a unit
// wrote (its stdout and stderr), bounded in time, count and size: what a unit writes is not trusted;
// and systemd's own record of how a run ended.
import { SentinelError } from '../core/errors.js';
import { runCommand } from './process.js';

/** Bound of one journalctl run, ms. */
const JOURNALCTL_TIMEOUT_MS = 5_000;
/** Most characters of one read kept (a journal line may be 48 KiB: a line count alone bounds nothing). */
export const JOURNAL_MAX_CHARS = 1_000_000;

/** A run's last lines, oldest first; `truncated` when older ones were left out to stay within JOURNAL_MAX_CHARS. */
export interface JournalLines {
  lines: string[];
  truncated: boolean;
}

/** Which lines: `_SYSTEMD_INVOCATION_ID=` of the run when known, else the unit and the main PID. */
export interface JournalMatch {
  unit: string;
  invocationId: string | null;
  pid: number;
}

// Why: a unit's watchdog evidence (faulthandler's thread stacks) is what its main process wrote to stderr;
// the invocation id names exactly that run, the unit and PID do when systemd did not say which run it was.
// Read newest first (-r), so that a read cut at JOURNAL_MAX_CHARS keeps the end of the run, where a dump is.
export async function journalLinesOf(match: JournalMatch, maxLines: number): Promise<JournalLines> {
  const fields = match.invocationId !== null && /^[0-9a-f]{32}$/.test(match.invocationId) ? [`_SYSTEMD_INVOCATION_ID=${match.invocationId}`] : [`_SYSTEMD_UNIT=${match.unit}`, `_PID=${String(match.pid)}`];
  const r = await runCommand(['journalctl', ...fields, '-r', '-o', 'cat', '--no-pager', '-n', String(maxLines)], { timeoutMs: JOURNALCTL_TIMEOUT_MS, maxBuffer: JOURNAL_MAX_CHARS });
  if (r.truncated) {
    const lines = r.stdout.split('\n');
    lines.pop(); // the oldest line kept may be cut short
    return { lines: lines.reverse(), truncated: true };
  }
  if (!r.ok) {
    const msg = r.timedOut ? `timed out after ${JOURNALCTL_TIMEOUT_MS} ms` : (r.stderr || r.message || `exit ${String(r.exitCode ?? 'unknown')}`).trim().split('\n')[0] ?? '';
    throw new SentinelError(r.startError === 'ENOENT' ? 'not-found' : 'unavailable', `journalctl ${fields.join(' ')} failed: ${msg}`, { where: match.unit });
  }
  return { lines: r.stdout === '' ? [] : r.stdout.split('\n').reverse(), truncated: false };
}

/** systemd's own record of how a unit's run ended: "Failed with result 'watchdog'." and the like. */
export interface UnitRunMatch {
  unit: string;
  invocationId: string;
}

// Why: the kernel reports systemd's SIGKILL after TimeoutAbortSec= like any other SIGKILL; only systemd knows
// it ended a watchdog timeout, and it says so in the journal once the run is over: a line of PID 1's (a trusted
// field: no process of the unit can write it) with the run's INVOCATION_ID and UNIT_RESULT=. True when such a
// line names `result`.
export async function unitResultLogged(run: UnitRunMatch, result: string): Promise<boolean> {
  if (!/^[0-9a-f]{32}$/.test(run.invocationId)) throw new SentinelError('internal', `not an invocation id: ${JSON.stringify(run.invocationId.slice(0, 40))}`, { where: run.unit });
  if (!/^[a-z][a-z-]{0,31}$/.test(result)) throw new SentinelError('internal', `not a unit result: ${JSON.stringify(result.slice(0, 40))}`, { where: run.unit });
  const fields = ['_PID=1', `INVOCATION_ID=${run.invocationId}`, `UNIT_RESULT=${result}`];
  // -q: no "-- No entries --" or other informational line is printed for a run with no such line.
  const r = await runCommand(['journalctl', ...fields, '-q', '-o', 'cat', '--no-pager', '-n', '1'], { timeoutMs: JOURNALCTL_TIMEOUT_MS, maxBuffer: 64 * 1024 });
  if (!r.ok && !r.truncated) {
    const msg = r.timedOut ? `timed out after ${JOURNALCTL_TIMEOUT_MS} ms` : (r.stderr || r.message || `exit ${String(r.exitCode ?? 'unknown')}`).trim().split('\n')[0] ?? '';
    throw new SentinelError(r.startError === 'ENOENT' ? 'not-found' : 'unavailable', `journalctl ${fields.join(' ')} failed: ${msg}`, { where: run.unit });
  }
  return r.stdout.trim() !== '';
}
