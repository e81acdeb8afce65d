// The exit codes beyond 0/1/2 (README.md "Commands"), in one place, and how a command that names a target
// turns a failure into its exit code: an unknown target is 4 for every such command (trace, target reset).
import { exitCodeFor } from '../core/errors.js';
import { asSentinelError, failureJson, isJsonMode, printErrorLine } from './failure.js';

/** A target name the daemon does not know (`trace`, `target reset`). */
export const EXIT_UNKNOWN_TARGET = 4;
/** The daemon runs without its eBPF engine (`trace`). */
export const EXIT_NO_ENGINE = 5;

// Why: scripts need a distinct answer for "no such target" (a typo, another configuration) and "no engine"
// (the daemon polls /proc) rather than the 2 of "no daemon"; prints the one line (and --json's object).
export function targetCommandFailure(e: unknown): number {
  const err = asSentinelError(e);
  const code = err.code === 'not-found' && err.where === 'target' ? EXIT_UNKNOWN_TARGET : err.code === 'unavailable' && err.where === 'trace' ? EXIT_NO_ENGINE : exitCodeFor(err.code);
  if (isJsonMode()) {
    const body = failureJson(err);
    process.stdout.write(`${JSON.stringify({ ...body, error: { ...body.error, exitCode: code } })}\n`);
  }
  printErrorLine(err);
  if (process.env.SENTINEL_DEBUG === '1' && e instanceof Error && e.stack !== undefined) process.stderr.write(`${e.stack}\n`);
  return code;
}
