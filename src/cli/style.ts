// Colour for people, never for machines: only on a TTY, off with NO_COLOR (https://no-color.org)
// or TERM=dumb, forced with FORCE_COLOR; never in --json output or in the one-line error.

import { fstatSync } from 'node:fs';

/** A stream we may colour: stdout or stderr. */
type Out = { isTTY?: boolean };

const NOT_A_TTY: Out = { isTTY: false };

// Why: stdout's question without making process.stdout where fd 1 cannot be a terminal (the plain
// `vault verify` and `vault status` write fd 1 themselves, src/cli/output.ts; the stream's first use
// loads Node's stream modules). A terminal is a character device, and none of Linux's memory devices
// (major 1: /dev/null, /dev/zero, /dev/full, where a bench or a cron job sends output) is one.
function stdoutOut(): Out {
  try {
    const st = fstatSync(1);
    const major = ((st.rdev >>> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff);
    if (!st.isCharacterDevice() || major === 1) return NOT_A_TTY;
  } catch {
    return NOT_A_TTY; // fd 1 closed
  }
  return process.stdout;
}

// Whether text written to `stream` (default stdout) may carry ANSI colour codes.
export function colorEnabled(stream?: Out, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return (stream ?? stdoutOut()).isTTY === true;
}

const CODES = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;

/** The colour functions of one stream; each returns its text unchanged when colour is off. */
export type Paint = Record<keyof typeof CODES, (text: string) => string>;

// Colour functions for `stream` (decided once, so a command's output is consistent).
export function paint(stream?: Out, env: NodeJS.ProcessEnv = process.env): Paint {
  const on = colorEnabled(stream, env);
  const make = (code: number) => (text: string) => (on ? `\x1b[${String(code)}m${text}\x1b[0m` : text);
  return { red: make(CODES.red), green: make(CODES.green), yellow: make(CODES.yellow), bold: make(CODES.bold), dim: make(CODES.dim) };
}
