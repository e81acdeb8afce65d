// The addon's way of reading a release tree for verify: one native pass on the libuv pool through
// directory fds (native/src/inspect-tree.c) lists the tree, statx's every entry, reads its seal bits,
// link count and the count of its extended attributes, and hashes each regular file from the fd it
// stat'ed, never following a symlink (native/README.md#api); the main thread only converts records
// into entries and names the attributes of the few that have any.
import { resolve } from 'node:path';
import { SentinelError, messageOf } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import type { BundleLimits } from '../core/limits.js';
import { readPlainManifestTop } from '../core/manifest-plain.js';
import { NO_XATTRS, checkTree } from '../core/tree-check.js';
import type { ExpectedEntry, ObservedEntry, ObservedTree, Reading, TreeCheck } from '../core/tree-check.js';
import { FS_IMMUTABLE_FL } from './flag-store.js';
import { nativeThreads } from './native.js';
import type { NativeAddon } from './native.js';
import type { SignedTreeCheck, TreeInspector, TreeReading } from './tree-inspector.js';
import { intactTree } from './tree-intact.js';
import { inspectTree, wordsOf } from './tree-records.js';
import type { InspectedEntries, TreeRecords } from './tree-records.js';

export type { InspectedEntries } from './tree-records.js';

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

// Why: `vault verify` of 10,000 small files at openssl speed on two cores; the pass may start
// before the signatures are checked (every regular file up to the size limit is hashed, whether or
// not the manifest is known: nothing read is trusted before finish() or check() gets it).
export function nativeTreeInspector(addon: NativeAddon): TreeInspector {
  return {
    kind: 'native',
    start(root: string, _expected: readonly ExpectedEntry[] | undefined, limits: { maxFileBytes: number }): TreeReading {
      const top = resolve(root);
      const progress = new BigInt64Array(1);
      const result = inspectTree(addon, top, nativeThreads(), { hashAnyMax: limits.maxFileBytes, progress });
      result.catch(() => undefined);
      // Waits for the pass (feeding onProgress) with the expected digests decoded meanwhile.
      const settle = async (want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<{ s: TreeRecords; digests: Uint32Array | null }> => {
        // The total only for a caller who shows progress (a loop over every entry in cold code).
        const total = onProgress === undefined ? 0 : want.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
        const timer = onProgress === undefined ? undefined : setInterval(() => onProgress(Math.min(Number(progress[0]), total), total), PROGRESS_MS);
        // Decoded while the pass runs, so what follows it is only the comparison.
        const digests = expectedDigests(want);
        let s: TreeRecords | null;
        try {
          s = await result;
        } finally {
          if (timer !== undefined) clearInterval(timer);
        }
        if (s === null) throw new SentinelError('internal', 'the native tree inspection returned no answer', { where: top });
        onProgress?.(total, total);
        return { s, digests };
      };
      const observe = (s: TreeRecords, want: readonly ExpectedEntry[], digests: Uint32Array | null): ObservedTree => {
        const symlinks = new Set(want.filter((e) => e.type === 'symlink').map((e) => e.path));
        const entries = observedEntries(addon, top, s, s.paths, want, digests);
        entries.forEach((e, i) => {
          if (symlinks.has(e.path) && e.stat.ok && e.stat.value.type === 'symlink') e.target = s.target(i);
        });
        return { entries, unlisted: [...s.unlisted], ...(s.owner === undefined ? {} : { owner: s.owner }) };
      };
      return {
        async finish(want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<ObservedTree> {
          const { s, digests } = await settle(want, onProgress);
          return observe(s, want, digests);
        },
        async check(want: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<TreeCheck> {
          const { s, digests } = await settle(want, onProgress);
          return intactTree(s, s.paths, s.unlisted.length, want, digests, s.owner) ?? checkTree(want, observe(s, want, digests));
        },
        async checkSigned(manifestBytes: Uint8Array, limits: BundleLimits): Promise<SignedTreeCheck | null> {
          if (typeof addon.verifyManifestTree !== 'function') return null;
          // A pass that failed is reported by check() or finish(), as before.
          const s = await result.catch(() => null);
          if (s === null) return null;
          const found = addon.verifyManifestTree(manifestBytes, s.buffer, limits.maxPathBytes, limits.maxFileBytes, limits.maxTotalBytes, limits.maxEntries);
          if (found === null) return null;
          const top = readPlainManifestTop(manifestBytes, found[0]!, found[1]!, found[2]!, limits);
          if (top === null) return null;
          return { version: top.version, vaultId: top.vaultId, check: { problems: [], checkedFiles: found[3]!, checkedBytes: found[4]! } };
        },
        async abandon(): Promise<void> {
          await result.catch(() => undefined);
        },
      };
    },
  };
}
