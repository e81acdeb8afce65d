// Reads a manifest in its canonical form (docs/FORMAT.md) directly: one left-to-right pass over the
// text that accepts only the exact bytes the canonical encoder writes, so no JSON.parse, no
// re-encoding and no byte comparison are needed. It decides nothing about validity: the caller runs
// every rule of manifest-rules.ts on the value. Anything it does not expect (whitespace, another key
// order, an escape other than \" and \\, a float, a leading zero) makes it return null, and the
// caller takes the generic route, which names what is wrong.

/** The raw control characters U+0000..U+001F: canonical JSON has none (no whitespace; strings escape them). */
const CONTROLS = Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c));

/** Whether the text holds a raw control character; 32 native searches are far cheaper than one pass in JS or a first-run regex. */
function hasRawControl(text: string): boolean {
  for (const c of CONTROLS) if (text.includes(c)) return true;
  return false;
}

/** Largest number of digits a safe integer can have. */
const MAX_DIGITS = 16;

/**
 * A file or directory entry exactly as the canonical encoder writes it when its strings need no
 * escape: integers as String(n) writes them (no sign, no leading zero, at most 16 digits; the
 * caller checks they are safe), strings without a quote or backslash (raw control characters were
 * refused for the whole text). Sticky: it matches at lastIndex or not at all.
 */
const PLAIN_ENTRY = /\{"mode":(0|[1-9][0-9]{0,15}),"path":"([^"\\]*)",(?:"type":"dir"\}|"sha256":"([^"\\]*)","size":(0|[1-9][0-9]{0,15}),"type":"file"\})/y;

class Scanner {
  pos = 0;
  /** Index of the next backslash at or after pos (Infinity when none): strings before it have no escapes. */
  private nextEscape: number;

  constructor(private readonly s: string) {
    const b = s.indexOf('\\');
    this.nextEscape = b < 0 ? Infinity : b;
  }

  /** Consumes `literal` if the text continues with it. */
  lit(literal: string): boolean {
    if (!this.s.startsWith(literal, this.pos)) return false;
    this.pos += literal.length;
    return true;
  }

  /** The rest of a string whose opening quote was consumed, through its closing quote; null if not canonical. */
  str(): string | null {
    const end = this.s.indexOf('"', this.pos);
    if (end < 0) return null;
    if (this.nextEscape < end) return this.escapedStr();
    const v = this.s.slice(this.pos, end);
    this.pos = end + 1;
    return v;
  }

  /** A string holding \" or \\ (the only escapes canonical text can need here); any other escape is not canonical. */
  private escapedStr(): string | null {
    const s = this.s;
    let out = '';
    let from = this.pos;
    for (let i = this.pos; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(from, i);
        this.pos = i + 1;
        const b = s.indexOf('\\', this.pos);
        this.nextEscape = b < 0 ? Infinity : b;
        return out;
      }
      if (c !== 0x5c) continue;
      const d = s.charCodeAt(i + 1);
      if (d !== 0x22 && d !== 0x5c) return null;
      out += s.slice(from, i);
      from = i + 1;
      i++;
    }
    return null;
  }

  /** A safe integer written as String(n) writes it (no '+', no leading zero, no -0); null otherwise. */
  int(): number | null {
    const s = this.s;
    let i = this.pos;
    const negative = s.charCodeAt(i) === 0x2d;
    if (negative) i++;
    const first = i;
    let n = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
    }
    const digits = i - first;
    if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && s.charCodeAt(first) === 0x30) || !Number.isSafeInteger(n)) return null;
    if (negative && n === 0) return null;
    this.pos = i;
    return negative ? -n : n;
  }

  /**
   * A file or directory entry whose strings hold no escape, read by one native regular-expression
   * match instead of a dozen interpreted steps (a CLI parses its manifest once, in cold code); null
   * when the entry has another shape, and entry() reads it step by step.
   */
  private plainEntry(): Record<string, unknown> | null {
    PLAIN_ENTRY.lastIndex = this.pos;
    const m = PLAIN_ENTRY.exec(this.s);
    if (m === null) return null;
    const mode = Number(m[1]);
    const path = m[2]!;
    if (m[3] === undefined) {
      if (!Number.isSafeInteger(mode)) return null;
      this.pos = PLAIN_ENTRY.lastIndex;
      return { mode, path, type: 'dir' };
    }
    const size = Number(m[4]);
    if (!Number.isSafeInteger(mode) || !Number.isSafeInteger(size)) return null;
    this.pos = PLAIN_ENTRY.lastIndex;
    return { mode, path, sha256: m[3], size, type: 'file' };
  }

  /** One entry in its canonical key order, as JSON.parse would build it (same keys, same order); null if not canonical. */
  entry(): Record<string, unknown> | null {
    const plain = this.plainEntry();
    if (plain !== null) return plain;
    if (this.lit('{"mode":')) {
      const mode = this.int();
      if (mode === null || !this.lit(',"path":"')) return null;
      const path = this.str();
      if (path === null) return null;
      if (this.lit(',"type":"dir"}')) return { mode, path, type: 'dir' };
      if (!this.lit(',"sha256":"')) return null;
      const sha256 = this.str();
      if (sha256 === null || !this.lit(',"size":')) return null;
      const size = this.int();
      if (size === null || !this.lit(',"type":"file"}')) return null;
      return { mode, path, sha256, size, type: 'file' };
    }
    if (!this.lit('{"path":"')) return null;
    const path = this.str();
    if (path === null || !this.lit(',"target":"')) return null;
    const target = this.str();
    if (target === null || !this.lit(',"type":"symlink"}')) return null;
    return { path, target, type: 'symlink' };
  }
}

// The value of a manifest text in canonical form (not yet checked against any rule), or null when
// the text is not in that form.
export function scanCanonicalManifest(text: string): Record<string, unknown> | null {
  if (hasRawControl(text)) return null;
  const sc = new Scanner(text);
  if (!sc.lit('{"created":"')) return null;
  const created = sc.str();
  if (created === null || !sc.lit(',"entries":[')) return null;
  const entries: Record<string, unknown>[] = [];
  if (!sc.lit(']')) {
    for (;;) {
      const e = sc.entry();
      if (e === null) return null;
      entries.push(e);
      if (sc.lit(',')) continue;
      if (sc.lit(']')) break;
      return null;
    }
  }
  if (!sc.lit(',"expires":"')) return null;
  const expires = sc.str();
  if (expires === null || !sc.lit(',"format":"')) return null;
  const format = sc.str();
  if (format === null || !sc.lit(',"vaultId":"')) return null;
  const vaultId = sc.str();
  if (vaultId === null || !sc.lit(',"version":')) return null;
  const version = sc.int();
  if (version === null || !sc.lit('}') || sc.pos !== text.length) return null;
  return { created, entries, expires, format, vaultId, version };
}
