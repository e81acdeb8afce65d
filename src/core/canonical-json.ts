// Canonical JSON (docs/FORMAT.md) and the UTF-8 and code-point helpers it rests on: strict UTF-8 in
// and out, the path order (code points = bytewise UTF-8), and strings made printable for one-line errors.
import { SentinelError } from './errors.js';

// Text codecs are web-standard globals in every supported runtime; declared here because core compiles without Node types.
declare const TextEncoder: new () => { encode(s: string): Uint8Array };
declare const TextDecoder: new (label: string, opts: { fatal: boolean; ignoreBOM: boolean }) => { decode(b: Uint8Array): string };

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Whether a string holds a UTF-16 surrogate without its other half (it has no UTF-8 form). */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE_RE.test(s);
}

/** C0 controls and DEL: they would break one-line error reports, logs and `sha256sum -c` listings. */
export function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

// UTF-8 of a well-formed string; a lone surrogate has no UTF-8 form and is refused rather than replaced.
export function utf8Encode(s: string): Uint8Array {
  if (hasLoneSurrogate(s)) throw new SentinelError('malformed-bundle', 'string contains a lone UTF-16 surrogate (not representable in UTF-8)');
  return encoder.encode(s);
}

// Strict UTF-8 (no replacement characters, BOM kept so it is then refused by JSON parsing).
export function utf8Decode(bytes: Uint8Array, where?: string): string {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new SentinelError('malformed-bundle', 'not valid UTF-8', { where, cause });
  }
}

/** Byte length of the UTF-8 form of a well-formed string, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

// Order of paths: by Unicode code point, which is the same as bytewise order of their UTF-8 forms.
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point order only between surrogates and U+E000..U+FFFF: move surrogates above.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

// Canonical JSON (docs/FORMAT.md): sorted keys, no whitespace, safe integers only, JSON.stringify string escaping.
export function canonicalJson(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new SentinelError('internal', `canonical JSON holds only safe integers, got ${String(v)}`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort(comparePaths);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(rec[k])}`).join(',')}}`;
  }
  throw new SentinelError('internal', `canonical JSON cannot hold a ${typeof v}`);
}

/** A path made printable for a one-line error (control characters escaped). */
export function showPath(p: string): string {
  return hasControlChar(p) || hasLoneSurrogate(p) ? JSON.stringify(p) : p;
}
