// Every CLI failure becomes exactly one stderr line and an exit code (README.md "Commands": exit codes),
// and a `--json` command still leaves one JSON object on stdout so machines never parse stderr.
import { SentinelError, exitCodeFor, isSentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import { writeStdout } from './output.js';

/** Whether the running command promised JSON on stdout (set by the command before it works). */
let jsonMode = false;

// Commands with `--json` call this first so a failure still prints a JSON object on stdout.
export function setJsonMode(on: boolean): void {
  jsonMode = on;
}

// The daemon's commands ask this before choosing between a JSON or a text reply.
export function isJsonMode(): boolean {
  return jsonMode;
}

// Turns anything thrown into a SentinelError; unknown errors become 'internal' with their message.
export function asSentinelError(e: unknown): SentinelError {
  if (isSentinelError(e)) return e;
  if (e instanceof Error) {
    const errno = errnoOf(e);
    // A system error nobody wrapped gets its code from the one errno map; anything else is a bug.
    if (errno !== undefined) return new SentinelError(codeForErrno(errno), e.message, { where: (e as NodeJS.ErrnoException).path, cause: e });
    return new SentinelError('internal', e.message, { cause: e });
  }
  return new SentinelError('internal', String(e));
}

// The JSON shape of a failure, shared by every `--json` command.
export function failureJson(err: SentinelError): { ok: false; error: { code: string; message: string; where: string | null; exitCode: number } } {
  return { ok: false, error: { code: err.code, message: err.message, where: err.where ?? null, exitCode: exitCodeFor(err.code) } };
}

// Prints the one line (plus the JSON object in --json mode) and returns the exit code to use.
export function reportFailure(e: unknown): 1 | 2 {
  const err = asSentinelError(e);
  if (jsonMode) writeStdout(`${JSON.stringify(failureJson(err))}\n`);
  printErrorLine(err);
  if (process.env.SENTINEL_DEBUG === '1' && e instanceof Error && e.stack !== undefined) process.stderr.write(`${e.stack}\n`);
  return exitCodeFor(err.code);
}

// The one stderr line of a failure, for commands that print their own report first (verify, doctor).
export function printErrorLine(err: SentinelError): void {
  process.stderr.write(`sentinel: ${oneLine(err.toLine())}\n`);
}

/** Keeps the promise of "one line": embedded newlines in a message are folded. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}
