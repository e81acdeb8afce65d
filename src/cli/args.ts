// Argument parsers for commander options: bad values become 'usage' errors (exit 2) naming the flag;
// and the shared form of the examples in each command's --help.
import { SentinelError } from '../core/errors.js';

// `--version N`, `--threshold K`: a positive safe integer, nothing else.
export function positiveInteger(flag: string): (value: string) => number {
  return (value: string) => {
    if (!/^[0-9]+$/.test(value)) throw new SentinelError('usage', `${flag} must be a positive integer, got '${value}'`, { where: flag });
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new SentinelError('usage', `${flag} must be a positive integer, got '${value}'`, { where: flag });
    return n;
  };
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

// `--expires-in 30d`: a number and a unit (s, m, h, d, w), returned in milliseconds.
export function parseDuration(value: string, flag = '--expires-in'): number {
  const m = /^([0-9]+)([smhdw])$/.exec(value.trim());
  if (m === null) throw new SentinelError('usage', `${flag} must look like 90s, 30m, 12h, 30d or 2w, got '${value}'`, { where: flag });
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new SentinelError('usage', `${flag} must be a positive duration, got '${value}'`, { where: flag });
  return ms;
}

// The "Examples:" block appended to a command's --help.
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}
