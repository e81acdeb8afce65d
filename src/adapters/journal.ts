// The system journal through `journalctl`, from this one file: the lines one invocation of a unit
// wrote (its stdout and stderr), bounded in time and count.
import { SentinelError } from '../core/errors.js';
import { runCommand } from './process.js';

/** Bound of one journalctl run, ms. */
const JOURNALCTL_TIMEOUT_MS = 5_000;

/** Which lines: `_SYSTEMD_INVOCATION_ID=` of the run when known, else the unit and the main PID. */
export interface JournalMatch {
  unit: string;
  invocationId: string | null;
  pid: number;
}

// Why: a unit's watchdog evidence (faulthandler's thread stacks) is what its main process wrote to stderr;
// the invocation id names exactly that run, the unit and PID do when systemd did not say which run it was.
export async function journalLinesOf(match: JournalMatch, maxLines: number): Promise<string[]> {
  const fields = match.invocationId !== null && /^[0-9a-f]{32}$/.test(match.invocationId) ? [`_SYSTEMD_INVOCATION_ID=${match.invocationId}`] : [`_SYSTEMD_UNIT=${match.unit}`, `_PID=${String(match.pid)}`];
  const r = await runCommand(['journalctl', ...fields, '-o', 'cat', '--no-pager', '-n', String(maxLines)], { timeoutMs: JOURNALCTL_TIMEOUT_MS });
  if (!r.ok) {
    const msg = r.timedOut ? `timed out after ${JOURNALCTL_TIMEOUT_MS} ms` : (r.stderr || r.message || `exit ${String(r.exitCode ?? 'unknown')}`).trim().split('\n')[0] ?? '';
    throw new SentinelError(r.startError === 'ENOENT' ? 'not-found' : 'unavailable', `journalctl ${fields.join(' ')} failed: ${msg}`, { where: match.unit });
  }
  return r.stdout === '' ? [] : r.stdout.split('\n');
}
