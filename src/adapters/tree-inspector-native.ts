// The addon's way of reading a release tree for verify: one readdir listing, then one native pass
// on the libuv pool that statx's every entry, reads its seal bits, link count and the count of its
// extended attributes, and hashes each regular file from the fd it stat'ed (native/README.md#api);
// the main thread only converts records into entries and names the attributes of the few that have any.
import { readdirSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SentinelError, messageOf } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import { NO_XATTRS, checkTree } from '../core/tree-check.js';
import type { ExpectedEntry, ObservedEntry, ObservedTree, Reading, TreeCheck } from '../core/tree-check.js';
import { FS_IMMUTABLE_FL } from './flag-store.js';
import { errnoName, nativeThreads } from './native.js';
import type { NativeAddon } from './native.js';
import type { TreeInspector, TreeReading } from './tree-inspector.js';
import { intactTree, ownerOf } from './tree-intact.js';

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
}

// The record layout of native/src/inspect.c.
const RECORD = 80;
const TYPES = [null, 'file', 'dir', 'symlink', 'other'] as const;

/** `bytes` as 32-bit words (copied when not 4-byte aligned); compared word by word, in cold code, with no call per entry. */
function wordsOf(bytes: Uint8Array): Uint32Array {
  const b = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}

class InspectedRecords implements InspectedEntries {
  readonly count: number;
  private words: Uint32Array | undefined;
  constructor(private readonly buf: Buffer) {
    this.count = buf.length / RECORD;
  }
  type(i: number): 'file' | 'dir' | 'symlink' | 'other' | null {
    const t = this.buf.readInt32LE(i * RECORD);
    return t > 0 ? (TYPES[t] ?? null) : null;
  }
  statErrno(i: number): string | null {
    const t = this.buf.readInt32LE(i * RECORD);
    return t < 0 ? errnoName(-t) : null;
  }
  mode(i: number): number {
    return this.buf.readUInt32LE(i * RECORD + 4);
  }
  size(i: number): number {
    return this.buf.readDoubleLE(i * RECORD + 8);
  }
  sealBits(i: number): number | string {
    const s = this.buf.readInt32LE(i * RECORD + 16);
    return s < 0 ? errnoName(-s) : s;
  }
  hashed(i: number): boolean {
    return this.buf.readInt32LE(i * RECORD + 20) === 0;
  }
  hashErrno(i: number): string | null {
    const e = this.buf.readInt32LE(i * RECORD + 20);
    return e > 0 ? errnoName(e) : null;
  }
  hashedBytes(i: number): number {
    return this.buf.readDoubleLE(i * RECORD + 24);
  }
  sha256(i: number): string {
    return this.buf.toString('hex', i * RECORD + 32, i * RECORD + 64);
  }
  links(i: number): number {
    return this.buf.readUInt32LE(i * RECORD + 64);
  }
  xattrCount(i: number): number | string {
    const x = this.buf.readInt32LE(i * RECORD + 68);
    return x < 0 ? errnoName(-x) : x;
  }
  uid(i: number): number { return this.buf.readUInt32LE(i * RECORD + 72); }
  gid(i: number): number { return this.buf.readUInt32LE(i * RECORD + 76); }
  sha256Equals(i: number, digests: Uint32Array, at: number): boolean {
    const w = (this.words ??= wordsOf(this.buf));
    const r = (i * RECORD + 32) >>> 2;
    for (let k = 0; k < 8; k++) if (w[r + k] !== digests[at + k]) return false;
    return true;
  }
}

// Why: one native pass over many entries, its records read by index (no object per entry). `paths`
// are relative to `root`; `expectedSizes[i]` >= 0 asks for the hash of a regular file of exactly
// that size, -2 of any regular file of at most `options.hashAnyMax` bytes, -1 for none;
// `options.progress[0]` counts bytes hashed so far. Null when the addon lacks the call.
export async function inspectEntries(
  addon: NativeAddon,
  root: string,
  paths: readonly string[],
  expectedSizes: Float64Array,
  threads: number,
  options: { hashAnyMax?: number; progress?: BigInt64Array } = {},
): Promise<InspectedEntries | null> {
  if (typeof addon.inspectFilesAsync !== 'function') return null;
  if (paths.length !== expectedSizes.length) throw new SentinelError('internal', `inspectEntries: ${expectedSizes.length} sizes for ${paths.length} paths`);
  for (const p of paths) {
    if (p === '' || p.includes('\0')) throw new SentinelError('bad-path', 'an entry path is empty or holds a NUL byte', { where: root });
  }
  const raw = await addon.inspectFilesAsync(resolve(root), paths.join('\0'), expectedSizes, threads, options.hashAnyMax ?? -1, options.progress);
  return new InspectedRecords(raw);
}

/** Relative paths under `root` (pre-order, names sorted), from readdir alone: no lstat per entry. */
function listTree(root: string): { paths: string[]; unlisted: { path: string; error: string }[] } {
  const paths: string[] = [];
  const unlisted: { path: string; error: string }[] = [];
  const visit = (abs: string, rel: string): void => {
    let ents;
    try {
      ents = readdirSync(abs, { withFileTypes: true });
    } catch (e) {
      unlisted.push({ path: rel, error: errnoOf(e) ?? messageOf(e) });
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of ents) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      paths.push(r);
      // Dirent types are lstat types (readdir's d_type, or an lstat where the filesystem gives none).
      if (d.isDirectory()) visit(`${abs}/${d.name}`, r);
    }
  };
  visit(root, '');
  return { paths, unlisted };
}

/** How often the progress callback is fed while the native pass runs. */
const PROGRESS_MS = 100;

/**
 * The extended attributes the pass counted on one entry. Nothing is allocated for the common answer
 * (none); the names are read only for an entry that has some, by path (they may have changed since
 * the pass: then the count stands for them).
 */
function xattrsOf(addon: NativeAddon, s: InspectedEntries, i: number, abs: string): Reading<readonly string[]> {
  const n = s.xattrCount(i);
  if (n === 0) return NO_XATTRS;
  if (typeof n === 'string') return { ok: false, error: n };
  try {
    const names = addon.untoleratedXattrs?.(abs) ?? [];
    return { ok: true, value: names.length > 0 ? names : [`${n} attribute(s) removed while verify read them`] };
  } catch (e) {
    return { ok: false, error: errnoOf(e) ?? messageOf(e) };
  }
}

const NO_DIGEST = '0'.repeat(64);

// A seal reading is one of two values: shared, not one object per entry.
const SEALED: Reading<boolean> = Object.freeze({ ok: true, value: true });
const NOT_SEALED: Reading<boolean> = Object.freeze({ ok: true, value: false });

/**
 * One record as an observed entry; symlink targets are read by the caller. `expectedSha256`: the
 * manifest's hex digest when the record's SHA-256 bytes equal it (that string is used as it is).
 */
function entryOf(addon: NativeAddon, top: string, s: InspectedEntries, i: number, path: string, expectedSha256: string | null): ObservedEntry {
  const type = s.type(i);
  if (type === null) return { path, stat: { ok: false, error: s.statErrno(i) ?? 'EIO' } };
  const entry: ObservedEntry = { path, stat: { ok: true, value: { type, mode: s.mode(i), size: s.size(i) } }, xattrs: xattrsOf(addon, s, i, `${top}/${path}`), owner: { uid: s.uid(i), gid: s.gid(i) } };
  if (type === 'file') entry.links = s.links(i);
  if (type === 'file' || type === 'dir') {
    const bits = s.sealBits(i);
    entry.sealed = typeof bits === 'string' ? { ok: false, error: bits } : (bits & FS_IMMUTABLE_FL) !== 0 ? SEALED : NOT_SEALED;
  }
  const hashErr = s.hashErrno(i);
  if (hashErr !== null) entry.digest = { ok: false, error: hashErr };
  else if (s.hashed(i)) entry.digest = { ok: true, value: { sha256: expectedSha256 ?? s.sha256(i), bytes: s.hashedBytes(i) } };
  return entry;
}

// Why: the records' digests are compared with the manifest's as bytes, by index, so a file that
// matches costs no hex string; checkTree still compares every entry (the same string then).
/** Every expected digest as 8 words per entry, decoded in one call; null where one is not 64 hex digits (never after the rules). */
function expectedDigests(want: readonly ExpectedEntry[]): Uint32Array | null {
  const hex = want.map((e) => (e.type === 'file' && e.sha256.length === 64 ? e.sha256 : NO_DIGEST)).join('');
  // Anything else stops the decoding early: then every record's hex string is compared.
  const digests = wordsOf(Buffer.from(hex, 'hex'));
  return digests.length === want.length * 8 ? digests : null;
}

function observedEntries(addon: NativeAddon, top: string, s: InspectedEntries, paths: readonly string[], want: readonly ExpectedEntry[], digests: Uint32Array | null): ObservedEntry[] {
  // The expected entry of each listed path: by position where the two orders agree (the listing is
  // pre-order, the manifest sorted by path: they differ only around names sorting before '/').
  let byPath: Map<string, number> | undefined;
  const entries = new Array<ObservedEntry>(paths.length);
  for (let i = 0; i < paths.length; i++) {
    const path = paths[i]!;
    let j = i < want.length && want[i]!.path === path ? i : -1;
    if (j < 0) {
      byPath ??= new Map(want.map((e, k) => [e.path, k]));
      j = byPath.get(path) ?? -1;
    }
    const e = j >= 0 ? want[j]! : undefined;
    const same = digests !== null && e?.type === 'file' && s.hashed(i) && s.sha256Equals(i, digests, j * 8);
    entries[i] = entryOf(addon, top, s, i, path, same ? e.sha256 : null);
  }
  return entries;
}

async function targetOf(abs: string): Promise<Reading<string>> {
  try {
    return { ok: true, value: await readlink(abs) };
  } catch (e) {
    return { ok: false, error: errnoOf(e) ?? messageOf(e) };
  }
}

// Why: `vault verify` of 10,000 small files at openssl speed on two cores; the pass may start
// before the signatures are checked (every regular file up to the size limit is hashed then).
export function nativeTreeInspector(addon: NativeAddon): TreeInspector {
  return {
    kind: 'native',
    start(root: string, expected: readonly ExpectedEntry[] | undefined, limits: { maxFileBytes: number }): TreeReading {
      const top = resolve(root);
      const owner = ownerOf(top);
      const { paths, unlisted } = listTree(top);
      const sizes = new Float64Array(paths.length);
      if (expected === undefined) sizes.fill(-2);
      else {
        const byPath = new Map<string, ExpectedEntry>();
        for (const e of expected) byPath.set(e.path, e);
        paths.forEach((p, i) => {
          const e = byPath.get(p);
          sizes[i] = e?.type === 'file' ? e.size : -1;
        });
      }
      const progress = new BigInt64Array(1);
      const result = inspectEntries(addon, top, paths, sizes, nativeThreads(), { hashAnyMax: limits.maxFileBytes, progress });
      result.catch(() => undefined);
      // Waits for the pass (feeding onProgress) with the expected digests decoded meanwhile.
      const settle = async (want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<{ s: InspectedEntries; digests: Uint32Array | null }> => {
        const total = want.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
        const timer = onProgress === undefined ? undefined : setInterval(() => onProgress(Math.min(Number(progress[0]), total), total), PROGRESS_MS);
        // Decoded while the pass runs, so what follows it is only the comparison.
        const digests = expectedDigests(want);
        let s: InspectedEntries | null;
        try {
          s = await result;
        } finally {
          if (timer !== undefined) clearInterval(timer);
        }
        if (s === null || s.count !== paths.length) throw new SentinelError('internal', 'the native tree inspection returned no answer', { where: top });
        onProgress?.(total, total);
        return { s, digests };
      };
      const observe = async (s: InspectedEntries, want: readonly ExpectedEntry[], digests: Uint32Array | null): Promise<ObservedTree> => {
        const symlinks = new Set(want.filter((e) => e.type === 'symlink').map((e) => e.path));
        const entries = observedEntries(addon, top, s, paths, want, digests);
        for (const e of entries) {
          if (symlinks.has(e.path) && e.stat.ok && e.stat.value.type === 'symlink') e.target = await targetOf(join(top, e.path));
        }
        return { entries, unlisted, ...(owner === undefined ? {} : { owner }) };
      };
      return {
        async finish(want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<ObservedTree> {
          const { s, digests } = await settle(want, onProgress);
          return observe(s, want, digests);
        },
        async check(want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<TreeCheck> {
          const { s, digests } = await settle(want, onProgress);
          return (await intactTree(s, top, paths, unlisted.length, want, digests, owner)) ?? checkTree(want, await observe(s, want, digests));
        },
        async abandon(): Promise<void> {
          await result.catch(() => undefined);
        },
      };
    },
  };
}
