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
}

/** A whole tree as the pass read it: the entries, their paths, what could not be listed and the root's owner. */
export interface TreeRecords extends InspectedEntries {
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

/** `bytes` as 32-bit words (copied when not 4-byte aligned); compared word by word, in cold code, with no call per entry. */
export function wordsOf(bytes: Uint8Array): Uint32Array {
  const b = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}

class Records implements TreeRecords {
  readonly count: number;
  readonly paths: readonly string[];
  readonly unlisted: { path: string; error: string }[] = [];
  readonly owner: Owner | undefined;
  private words: Uint32Array | undefined;
  private readonly targets: Buffer;
  constructor(private readonly buf: Buffer) {
    this.count = buf.readUInt32LE(0);
    const rootErrno = buf.readInt32LE(4);
    const at = HEADER + this.count * RECORD;
    const pathBytes = buf.readUInt32LE(16);
    // One string for every path, split once: no call per entry.
    this.paths = this.count === 0 ? [] : buf.toString('utf8', at, at + pathBytes - 1).split('\0');
    this.targets = buf.subarray(at + pathBytes, at + pathBytes + buf.readUInt32LE(20));
    if (rootErrno !== 0) this.unlisted.push({ path: '', error: errnoName(rootErrno) });
    this.owner = rootErrno !== 0 && this.count === 0 ? undefined : { uid: buf.readUInt32LE(8), gid: buf.readUInt32LE(12) };
    for (let i = 0; i < this.count; i++) {
      const e = buf.readInt32LE(HEADER + i * RECORD + 80);
      if (e !== 0 && this.type(i) === 'dir') this.unlisted.push({ path: this.paths[i]!, error: errnoName(e) });
    }
  }
  private at(i: number): number {
    return HEADER + i * RECORD;
  }
  type(i: number): 'file' | 'dir' | 'symlink' | 'other' | null {
    const t = this.buf.readInt32LE(this.at(i));
    return t > 0 ? (TYPES[t] ?? null) : null;
  }
  statErrno(i: number): string | null {
    const t = this.buf.readInt32LE(this.at(i));
    return t < 0 ? errnoName(-t) : null;
  }
  mode(i: number): number {
    return this.buf.readUInt32LE(this.at(i) + 4);
  }
  size(i: number): number {
    return this.buf.readDoubleLE(this.at(i) + 8);
  }
  sealBits(i: number): number | string {
    const s = this.buf.readInt32LE(this.at(i) + 16);
    return s < 0 ? errnoName(-s) : s;
  }
  hashed(i: number): boolean {
    return this.buf.readInt32LE(this.at(i) + 20) === 0;
  }
  hashErrno(i: number): string | null {
    const e = this.buf.readInt32LE(this.at(i) + 20);
    return e > 0 ? errnoName(e) : null;
  }
  hashedBytes(i: number): number {
    return this.buf.readDoubleLE(this.at(i) + 24);
  }
  sha256(i: number): string {
    return this.buf.toString('hex', this.at(i) + 32, this.at(i) + 64);
  }
  links(i: number): number {
    return this.buf.readUInt32LE(this.at(i) + 64);
  }
  xattrCount(i: number): number | string {
    const x = this.buf.readInt32LE(this.at(i) + 68);
    return x < 0 ? errnoName(-x) : x;
  }
  uid(i: number): number {
    return this.buf.readUInt32LE(this.at(i) + 72);
  }
  gid(i: number): number {
    return this.buf.readUInt32LE(this.at(i) + 76);
  }
  target(i: number): Reading<string> {
    const t = this.buf.readInt32LE(this.at(i) + 84);
    if (t < 0) return { ok: false, error: errnoName(-t) };
    if (t === 0) return NOT_READ;
    const end = this.targets.indexOf(0, t - 1);
    return { ok: true, value: this.targets.toString('utf8', t - 1, end < 0 ? this.targets.length : end) };
  }
  sha256Equals(i: number, digests: Uint32Array, at: number): boolean {
    const w = (this.words ??= wordsOf(this.buf));
    const r = (this.at(i) + 32) >>> 2;
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
