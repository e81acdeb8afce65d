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
  const missing = missingModule(e);
  if (missing !== null) {
    // A file of the build itself (a path) is mended by building again, a package by installing the dependencies.
    const built = missing.startsWith('/') || missing.startsWith('.') || missing.startsWith('file:');
    const fix = built ? 'run npm run build in the checkout' : 'run npm ci in the checkout';
    return new SentinelError('unavailable', `module '${missing}' is missing, an incomplete install: ${fix}, or install the package again`, { where: built ? missing : `node_modules/${missing}`, cause: e });
  }
  if (e instanceof Error) {
    const errno = errnoOf(e);
    // A system error nobody wrapped gets its code from the one errno map; anything else is a bug.
    if (errno !== undefined) return new SentinelError(codeForErrno(errno), e.message, { where: (e as NodeJS.ErrnoException).path, cause: e });
    return new SentinelError('internal', e.message, { cause: e });
  }
  return new SentinelError('internal', String(e));
}

// Why: a package of node_modules that is not there (an interrupted or offline `npm ci`) is the install to mend, not a
// bug: its name, from Node's CommonJS (MODULE_NOT_FOUND) or ES module (ERR_MODULE_NOT_FOUND) loader.
function missingModule(e: unknown): string | null {
  const code = (e as { code?: unknown } | null)?.code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return null;
  const m = /Cannot find (?:module|package) '([^']+)'/.exec(e instanceof Error ? e.message : '');
  return m?.[1] ?? null;
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
