// Colour for people, never for machines: only on a TTY, off with NO_COLOR (https://no-color.org)
// or TERM=dumb, forced with FORCE_COLOR; never in --json output or in the one-line error.

/** A stream we may colour: stdout or stderr. */
type Out = { isTTY?: boolean };

// Whether text written to `stream` may carry ANSI colour codes.
export function colorEnabled(stream: Out = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

const CODES = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;

/** The colour functions of one stream; each returns its text unchanged when colour is off. */
export type Paint = Record<keyof typeof CODES, (text: string) => string>;

// Colour functions for `stream` (decided once, so a command's output is consistent).
export function paint(stream: Out = process.stdout, env: NodeJS.ProcessEnv = process.env): Paint {
  const on = colorEnabled(stream, env);
  const make = (code: number) => (text: string) => (on ? `\x1b[${String(code)}m${text}\x1b[0m` : text);
  return { red: make(CODES.red), green: make(CODES.green), yellow: make(CODES.yellow), bold: make(CODES.bold), dim: make(CODES.dim) };
}
