// The records of the addon's tree pass (native/src/inspect-tree.c), read by index with no object
// per entry: one Buffer holds a header, one fixed-size record per entry, the entries' relative
// paths (pre-order, names sorted bytewise) and the targets of the symlinks it read.
import { resolve } from 'node:path';
import type { Owner, Reading } from '../core/tree-check.js';
import { errnoName } from './native.js';
import type { NativeAddon } from './native.js';

/** What one native pass found about many tree entries; read by index, no object per entry. */
export interface InspectedEntries {
  readonly count: number;
  /** lstat type, or null when the entry could not be stat'ed (then `statErrno` names why). */
  type(i: number): 'file' | 'dir' | 'symlink' | 'other' | null;
  statErrno(i: number): string | null;
  /** Permission bits (mode & 0o7777). */
  mode(i: number): number;
  size(i: number): number;
  /** FS_IMMUTABLE_FL|FS_APPEND_FL, or the errno name when they could not be read (ELOOP for a symlink). */
  sealBits(i: number): number | string;
  /** Whether the file was hashed; false when it was not asked for (wrong type or size). */
  hashed(i: number): boolean;
  /** The errno name when hashing failed, else null. */
  hashErrno(i: number): string | null;
  /** Bytes read while hashing. */
  hashedBytes(i: number): number;
  /** Lowercase hex SHA-256 of a hashed file. */
  sha256(i: number): string;
  /** st_nlink. */
  links(i: number): number;
  /** How many extended attributes other than the tolerated LSM labels, or the errno name when they could not be listed. */
  xattrCount(i: number): number | string;
  /** Whether the SHA-256 of a hashed file equals the 8 words of `digests` from `at` (no string made). */
  sha256Equals(i: number, digests: Uint32Array, at: number): boolean;
  /** Owner uid and gid. */
  uid(i: number): number;
  gid(i: number): number;
  /** A symlink's target as read in its directory's fd (never through a path). */
  target(i: number): Reading<string>;
  /** The records as typed arrays, for a loop over every entry with no call per field (tree-intact.ts). */
  readonly view: RecordView;
}

/**
 * The records' words: entry i's record starts at i32/u32 index `word(i)` (always even, so its
 * doubles are at f64 index word(i) / 2 + F64.size and + F64.hashedBytes); field offsets in WORD.
 */
export interface RecordView {
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  word(i: number): number;
}

/** 32-bit word offsets of the fields in a record (native/src/inspect-tree.h). */
export const WORD = { type: 0, mode: 1, seal: 4, hashErrno: 5, sha256: 8, links: 16, xattrs: 17, uid: 18, gid: 19, listed: 20, target: 21 } as const;
/** 64-bit offsets of the doubles in a record. */
export const F64 = { size: 1, hashedBytes: 3 } as const;

/** A whole tree as the pass read it: the entries, their paths, what could not be listed and the root's owner. */
export interface TreeRecords extends InspectedEntries {
  /** The pass's answer as it came (native/src/inspect-tree.h), for the addon's own comparison (native/src/verify-tree.c). */
  readonly buffer: Buffer;
  readonly paths: readonly string[];
  readonly unlisted: readonly { path: string; error: string }[];
  /** The root's uid and gid (from its open fd); undefined when the root could not be opened. */
  readonly owner: Owner | undefined;
}

// The layout of native/src/inspect-tree.h.
const HEADER = 24;
const RECORD = 88;
const TYPES = [null, 'file', 'dir', 'symlink', 'other'] as const;
const NOT_READ: Reading<string> = Object.freeze({ ok: false, error: 'not read' });
const FATAL = new TextDecoder('utf-8', { fatal: true });

/** The length of the valid UTF-8 sequence at b[p], or 0 (a bad lead, a missing continuation, overlong, a surrogate, beyond U+10FFFF). */
function sequenceAt(b: Uint8Array, p: number): number {
  const c = b[p]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || p + n > b.length) return 0;
  try {
    FATAL.decode(b.subarray(p, p + n));
    return n;
  } catch {
    return 0;
  }
}

/** `b` as a string when it is valid UTF-8, else null (no lossy decoding: see nameOf). */
export function utf8OrNull(b: Uint8Array): string | null {
  try {
    return FATAL.decode(b);
  } catch {
    return null;
  }
}

/**
 * A raw name as a string that no other raw name decodes to: valid UTF-8 as it is, each byte of an
 * invalid sequence as the lone surrogate U+DC80-U+DCFF (which decoding valid UTF-8 never gives).
 * A lossy decoding would give two names (`x\uFFFD`, and `x\xff`) one path, and the later one would
 * hide the other from the comparison.
 */
export function nameOf(b: Uint8Array): string {
  try {
    return FATAL.decode(b);
  } catch {
    let s = '';
    for (let p = 0; p < b.length; ) {
      const n = sequenceAt(b, p);
      s += n === 0 ? String.fromCharCode(0xdc00 + b[p]!) : FATAL.decode(b.subarray(p, p + n));
      p += n === 0 ? 1 : n;
    }
    return s;
  }
}

/** The paths of the NUL-separated `blob`, decoded in one call; only a path holding U+FFFD (rare) is decoded again from its bytes. */
function pathsOf(blob: Buffer): string[] {
  const paths = blob.toString('utf8').split('\0');
  if (!paths.some((p) => p.includes('\uFFFD'))) return paths;
  for (let i = 0, from = 0; i < paths.length; i++) {
    const end = i === paths.length - 1 ? blob.length : blob.indexOf(0, from);
    if (paths[i]!.includes('\uFFFD')) paths[i] = nameOf(blob.subarray(from, end));
    from = end + 1;
  }
  return paths;
}

/** `bytes` as 32-bit words (copied when not 4-byte aligned); compared word by word, in cold code, with no call per entry. */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  const b = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}

const HEADER_WORDS = HEADER / 4;
const RECORD_WORDS = RECORD / 4;

class Records implements TreeRecords {
  readonly count: number;
  readonly owner: Owner | undefined;
  readonly view: RecordView;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;
  private readonly targets: Buffer;
  // Decoded on first use: verify's intact answer from the addon (native/src/verify-tree.c) needs neither.
  private decoded: { paths: readonly string[]; unlisted: { path: string; error: string }[] } | null = null;
  constructor(private readonly buf: Buffer) {
    this.count = buf.readUInt32LE(0);
    // Typed arrays over the records (the buffer copied once where it is not 8-byte aligned).
    const b = buf.byteOffset % 8 === 0 ? buf : Buffer.from(buf);
    const words = HEADER_WORDS + this.count * RECORD_WORDS;
    this.i32 = new Int32Array(b.buffer, b.byteOffset, words);
    this.u32 = new Uint32Array(b.buffer, b.byteOffset, words);
    this.f64 = new Float64Array(b.buffer, b.byteOffset, words >>> 1);
    this.view = { i32: this.i32, u32: this.u32, f64: this.f64, word: (i) => HEADER_WORDS + i * RECORD_WORDS };
    const rootErrno = buf.readInt32LE(4);
    const at = HEADER + this.count * RECORD;
    const pathBytes = buf.readUInt32LE(16);
    this.targets = buf.subarray(at + pathBytes, at + pathBytes + buf.readUInt32LE(20));
    this.owner = rootErrno !== 0 && this.count === 0 ? undefined : { uid: buf.readUInt32LE(8), gid: buf.readUInt32LE(12) };
  }
  get buffer(): Buffer {
    return this.buf;
  }
  get paths(): readonly string[] {
    return (this.decoded ??= this.decode()).paths;
  }
  get unlisted(): readonly { path: string; error: string }[] {
    return (this.decoded ??= this.decode()).unlisted;
  }
  private decode(): { paths: readonly string[]; unlisted: { path: string; error: string }[] } {
    const buf = this.buf;
    const rootErrno = buf.readInt32LE(4);
    const at = HEADER + this.count * RECORD;
    const pathBytes = buf.readUInt32LE(16);
    // One string for every path, split once: no call per entry.
    const paths = this.count === 0 ? [] : pathsOf(buf.subarray(at, at + pathBytes - 1));
    const unlisted: { path: string; error: string }[] = [];
    if (rootErrno !== 0) unlisted.push({ path: '', error: errnoName(rootErrno) });
    const i32 = this.i32;
    for (let i = 0, w = HEADER_WORDS; i < this.count; i++, w += RECORD_WORDS) {
      if (i32[w + WORD.listed] !== 0 && i32[w] === 2) unlisted.push({ path: paths[i]!, error: errnoName(i32[w + WORD.listed]!) });
    }
    return { paths, unlisted };
  }
  private at(i: number): number {
    return HEADER + i * RECORD;
  }
  private w(i: number): number {
    return HEADER_WORDS + i * RECORD_WORDS;
  }
  type(i: number): 'file' | 'dir' | 'symlink' | 'other' | null {
    const t = this.i32[this.w(i)]!;
    return t > 0 ? (TYPES[t] ?? null) : null;
  }
  statErrno(i: number): string | null {
    const t = this.i32[this.w(i)]!;
    return t < 0 ? errnoName(-t) : null;
  }
  mode(i: number): number {
    return this.u32[this.w(i) + WORD.mode]!;
  }
  size(i: number): number {
    return this.f64[(this.w(i) >>> 1) + F64.size]!;
  }
  sealBits(i: number): number | string {
    const s = this.i32[this.w(i) + WORD.seal]!;
    return s < 0 ? errnoName(-s) : s;
  }
  hashed(i: number): boolean {
    return this.i32[this.w(i) + WORD.hashErrno] === 0;
  }
  hashErrno(i: number): string | null {
    const e = this.i32[this.w(i) + WORD.hashErrno]!;
    return e > 0 ? errnoName(e) : null;
  }
  hashedBytes(i: number): number {
    return this.f64[(this.w(i) >>> 1) + F64.hashedBytes]!;
  }
  sha256(i: number): string {
    return this.buf.toString('hex', this.at(i) + 32, this.at(i) + 64);
  }
  links(i: number): number {
    return this.u32[this.w(i) + WORD.links]!;
  }
  xattrCount(i: number): number | string {
    const x = this.i32[this.w(i) + WORD.xattrs]!;
    return x < 0 ? errnoName(-x) : x;
  }
  uid(i: number): number {
    return this.u32[this.w(i) + WORD.uid]!;
  }
  gid(i: number): number {
    return this.u32[this.w(i) + WORD.gid]!;
  }
  target(i: number): Reading<string> {
    const t = this.i32[this.w(i) + WORD.target]!;
    if (t < 0) return { ok: false, error: errnoName(-t) };
    if (t === 0) return NOT_READ;
    const end = this.targets.indexOf(0, t - 1);
    try {
      return { ok: true, value: FATAL.decode(this.targets.subarray(t - 1, end < 0 ? this.targets.length : end)) };
    } catch {
      // Not UTF-8: no manifest target (a string) is that link's bytes.
      return { ok: false, error: 'EILSEQ' };
    }
  }
  sha256Equals(i: number, digests: Uint32Array, at: number): boolean {
    const w = this.u32;
    const r = this.w(i) + WORD.sha256;
    for (let k = 0; k < 8; k++) if (w[r + k] !== digests[at + k]) return false;
    return true;
  }
}

// Why: the whole tree in one native pass through directory fds, its records read by index. Every
// regular file of at most `hashAnyMax` bytes is hashed; `options.progress[0]` counts bytes hashed
// so far. Null when the addon lacks the call.
export async function inspectTree(
  addon: NativeAddon,
  root: string,
  threads: number,
  options: { hashAnyMax: number; progress?: BigInt64Array },
): Promise<TreeRecords | null> {
  if (typeof addon.inspectTreeAsync !== 'function') return null;
  return new Records(await addon.inspectTreeAsync(resolve(root), threads, options.hashAnyMax, options.progress));
}
