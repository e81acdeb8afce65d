// The path rules of docs/FORMAT.md for one manifest path: relative, '/'-separated, normalised, no
// traversal, within PATH_MAX/NAME_MAX, valid Unicode with no control character; and the one-match
// fast path for printable ASCII. Part of the manifest rules (manifest-rules.ts).
import { showPath } from './canonical-json.js';
import { DEFAULT_LIMITS, MAX_NAME_BYTES, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';

/** Why a path is not a safe release path, or null when it is. */
export function pathProblem(p: string, limits: BundleLimits): string | null {
  if (p === '') return 'path is empty';
  if (p.charCodeAt(0) === 0x2f) return 'path is absolute';
  if (p.charCodeAt(p.length - 1) === 0x2f) return 'path ends with /';
  // One pass: characters, UTF-8 byte counts, and each component when its '/' (or the end) is reached.
  let total = 0;
  let start = 0;
  let nameBytes = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const n = i - start;
      if (n === 0) return 'path has an empty component (//)';
      if (p.charCodeAt(start) === 0x2e && (n === 1 || (n === 2 && p.charCodeAt(start + 1) === 0x2e))) {
        return n === 1 ? 'path has a "." component' : 'path has a ".." component (traversal)';
      }
      if (nameBytes > MAX_NAME_BYTES) return `path component longer than ${MAX_NAME_BYTES} bytes`;
      if (i < p.length) total += 1;
      start = i + 1;
      nameBytes = 0;
      continue;
    }
    if (c === 0) return 'path contains NUL';
    if (c === 0x5c) return 'path contains a backslash';
    if (c < 0x20 || c === 0x7f) return 'path contains a control character';
    let bytes = 3;
    if (c < 0x80) bytes = 1;
    else if (c < 0x800) bytes = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = p.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return 'path is not valid Unicode (lone surrogate)';
      i++;
      bytes = 4;
    } else if (c >= 0xdc00 && c <= 0xdfff) return 'path is not valid Unicode (lone surrogate)';
    nameBytes += bytes;
    total += bytes;
  }
  if (total > limits.maxPathBytes) return `path is longer than ${limits.maxPathBytes} bytes`;
  return null;
}

/**
 * A printable-ASCII path that pathProblem accepts (within the name limit; the caller checks the
 * total length): components of 1..255 characters other than '/', '\\' and controls, none "." or
 * "..". One native match instead of a loop in cold code; anything else goes to pathProblem, which
 * says what is wrong. In ASCII a character is a byte, and UTF-16 order is comparePaths' order.
 */
const COMPONENT = `(?!\\.\\.?(?:/|$))[\\x20-\\x2e\\x30-\\x5b\\x5d-\\x7e]{1,${MAX_NAME_BYTES}}`;
const PLAIN_ASCII_PATH = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

// The fast path of the path rules: true only for a path pathProblem accepts (exported so a property test holds it to that).
export function isPlainAsciiPath(p: string, limits: BundleLimits): boolean {
  return p.length <= limits.maxPathBytes && PLAIN_ASCII_PATH.test(p);
}

// Path rules of docs/FORMAT.md: relative, '/'-separated, normalised, no traversal, within PATH_MAX/NAME_MAX.
export function assertSafePath(p: string, limits: BundleLimits = DEFAULT_LIMITS): void {
  if (typeof p !== 'string') throw new SentinelError('bad-path', 'path must be a string');
  const why = pathProblem(p, limits);
  if (why !== null) throw new SentinelError('bad-path', why, { where: showPath(p) });
}
