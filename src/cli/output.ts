// Where CLI output goes: results on stdout (JSON or text), progress and warnings on stderr.
import { fstatSync, writeSync } from 'node:fs';

// Set by the plain `vault status` and `vault verify` runners (src/cli/plain-status.ts,
// plain-verify.ts): stdout is written through fd 1 itself, so the process never makes
// process.stdout, whose first use loads Node's stream modules (about 3 ms of a process whose output
// goes to a pipe or /dev/null). Off: process.stdout.
let direct = false;

/** Whether results are written through fd 1 directly (see writeStdout); the plain status and verify runners turn it on. */
export function setDirectStdout(on: boolean): void {
  direct = on;
}

// One result's text on stdout. Directly: the whole text through fd 1; a reader that went away
// (EPIPE) drops the rest, as the stream's handler does (src/cli/entry.ts), and anything else (a
// full non-blocking pipe, EAGAIN; fd 1 closed) hands the rest to process.stdout, which waits for
// the reader or discards as it always has, and every later result goes there too, in order.
export function writeStdout(text: string): void {
  if (!direct) {
    process.stdout.write(text);
    return;
  }
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
    direct = false;
    // The stream is made only now: a reader gone while it waits is still not the command's failure.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
    process.stdout.write(bytes.subarray(done));
  }
}

// Prints one JSON document on stdout (the only thing a `--json` command writes there).
export function printJson(value: unknown): void {
  writeStdout(`${JSON.stringify(value, null, 2)}\n`);
}

// Prints human-readable lines on stdout.
export function printLines(...lines: string[]): void {
  writeStdout(`${lines.join('\n')}\n`);
}

// Whether stderr is a terminal, without making process.stderr where it cannot be one: that stream,
// for a pipe (a monitoring check's, cron's), loads node:net and its socket code (about 4M
// instructions of `vault verify`'s main thread). A terminal is a character device; anything else
// (a pipe, a file, a closed descriptor) is not, and only a character device asks the stream.
function stderrIsTty(): boolean {
  try {
    if (!fstatSync(2).isCharacterDevice()) return false;
  } catch {
    return false;
  }
  return process.stderr.isTTY === true;
}

// A one-line progress bar on stderr, only for a TTY (never in --json, never into logs). `shown`:
// whether it draws anything, so a caller can skip the work of feeding it otherwise.
export function progressBar(label: string, enabled: boolean): { shown: boolean; update(done: number, total: number): void; end(): void } {
  const tty = enabled && stderrIsTty();
  let last = -1;
  return {
    shown: tty,
    update(done: number, total: number) {
      if (!tty || total <= 0) return;
      const pct = Math.floor((done / total) * 100);
      if (pct === last) return;
      last = pct;
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%`);
    },
    end() {
      if (tty && last >= 0) process.stderr.write('\r\x1b[K');
    },
  };
}
