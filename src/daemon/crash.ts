// What ends `sentinel daemon` when an error escapes every handler (an uncaught exception, an unhandled rejection):
// a crash, exit 2, whatever the error's code. Exit 1 and 3 are the refusals at start (a vault or a configuration
// the operator must mend; the shipped unit's RestartPreventExitStatus=1 3 does not restart them), and they come
// only from start-up's own result; a crash is a bug or a passing fault, which the unit's Restart=on-failure restarts
// (docs/DAEMON.md#start-up-readiness-shutdown).
import { isSentinelError, messageOf } from '../core/errors.js';
import type { Logger } from '../adapters/logger.js';

/** The exit code of a crash: not 1 or 3, so the unit restarts the daemon. */
export const EXIT_CRASH = 2;

/** The crash's one line: what escaped, with its code and where when it is a SentinelError. */
export function describeCrash(e: unknown, origin: string): { code: string; where: string | null; message: string } {
  const code = isSentinelError(e) ? e.code : 'internal';
  const where = isSentinelError(e) ? (e.where ?? null) : null;
  const what = `${code}: ${messageOf(e)}${where !== null ? ` (${where})` : ''}`;
  return { code, where, message: `sentinel crashed (${origin}): ${what}; exit ${String(EXIT_CRASH)}, for systemd to restart it` };
}

// Why: replaces the CLI's last-resort handlers (which map a code to 1 or 2) for the daemon's whole life; the line
// goes to the daemon's log (journal priority crit) once it has one, to stderr before that.
export function installCrashExit(log: () => Logger | null): void {
  const crash = (origin: string) => (e: unknown) => {
    const { code, where, message } = describeCrash(e, origin);
    const logger = log();
    if (logger !== null) logger.fatal({ event: 'crash', origin, code, where, stack: e instanceof Error ? (e.stack ?? null) : null }, message);
    else process.stderr.write(`${message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(EXIT_CRASH);
  };
  for (const [event, origin] of [['uncaughtException', 'uncaught exception'], ['unhandledRejection', 'unhandled rejection']] as const) {
    process.removeAllListeners(event);
    process.on(event, crash(origin));
  }
}
