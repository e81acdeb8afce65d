// Recovery actions that run outside programs: `systemctl restart UNIT` and a
// target's own `restart` command. Both are bounded by a timeout and report failure as errors.
import { execa } from 'execa';
import { SentinelError } from '../core/errors.js';

export interface ActionResult {
  /** Wall time the action took, in ms. */
  ms: number;
}

// Why: systemd knows how to stop and start its unit; we only ask it to, at once.
export async function restartUnit(unit: string, timeoutMs = 60_000): Promise<ActionResult> {
  return runRecoveryCommand(['systemctl', 'restart', '--', unit], timeoutMs, unit);
}

// Why: a pid-file target is restarted by the operator's own command; its failure must be visible.
export async function runRecoveryCommand(argv: readonly string[], timeoutMs = 60_000, where?: string): Promise<ActionResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new SentinelError('config', 'empty recovery command', { where });
  const t0 = performance.now();
  const r = await execa(file, args, { reject: false, timeout: timeoutMs, stdin: 'ignore' });
  const ms = performance.now() - t0;
  if (r.failed) {
    const code = r.code === 'ENOENT' ? 'not-found' : 'unavailable';
    const detail = r.timedOut ? `timed out after ${timeoutMs} ms` : (r.stderr.trim().split('\n').pop() ?? '') || r.shortMessage;
    throw new SentinelError(code, `recovery command ${argv.join(' ')} failed: ${detail}`, { where: where ?? file });
  }
  return { ms };
}
