// The common manifest read and checked in one pass (docs/FORMAT.md): canonical text whose paths and
// symlink targets are printable ASCII without a quote or backslash (so no string holds an escape).
// Each entry is read by one scan that also enforces what the rules ask of its own text (path
// components, 64 lowercase hex, integer forms, the mode's range, lengths): the addon's scan over the
// manifest's bytes when the process has it (native/src/manifest-scan.c, which also checks the order),
// else one native regular-expression match per entry; the loop adds the rest (ranges, order, parents)
// and the manifest-level rules are the same functions the strict reader runs. Either every rule
// passes and the manifest is returned, or the answer is null and the strict reader (manifest-scan.ts,
// then every rule of manifest-rules.ts) takes the whole text again and names what is wrong: this
// reader never reports an error itself, so the errors cannot differ.
// Written for cold code: a process reads its manifest once, mostly in V8's interpreter, so the
// work per entry is one match or a few reads of the scan's numbers and a few comparisons, no call
// into another rule function.
import { utf8Decode } from './canonical-json.js';
import type { BundleLimits } from './limits.js';
import { MAX_NAME_BYTES, MAX_SYMLINK_TARGET_BYTES } from './limits.js';
import type { Manifest, ManifestEntry } from './manifest.js';
import { Problems } from './manifest-problems.js';
import { checkTopLevel } from './manifest-rules.js';
import { PathIndex, checkParentsAndLinks } from './manifest-tree-rules.js';

/**
 * A path the path rules accept, inside a JSON string: components of printable ASCII other than '"',
 * '/' and '\\', none "." or "..". ASCII: a character is a byte. Lengths (a component's 255 bytes,
 * the whole path's limit) are checked by the loop: a counted quantifier costs the matcher far more
 * per character than a plain one.
 */
const NAME = '(?!\\.\\.?[/"])[\\x20\\x21\\x23-\\x2e\\x30-\\x5b\\x5d-\\x7e]+';
const PATH = `${NAME}(?:/${NAME})*`;
/** A mode, a size: digits as String(n) writes them (the loop checks the ranges, so also the digits' count). */
const INT = '(0|[1-9][0-9]*)';
/**
 * One entry and the ',' or ']' after it. Groups: 1 mode, 2 path, 3 sha256 (lowercase hex; the loop
 * checks its length), 4 size (file and dir); 5 path, 6 target (symlink: printable ASCII, no quote or
 * backslash, not absolute); 7 the separator.
 */
const ENTRY = new RegExp(
  `(?:\\{"mode":${INT},"path":"(${PATH})",(?:"type":"dir"\\}|"sha256":"([0-9a-f]+)","size":${INT},"type":"file"\\})` +
    `|\\{"path":"(${PATH})","target":"((?!/)[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]+)","type":"symlink"\\})([,\\]])`,
  'y',
);
/** Up to the first entry; group 1 created. */
const HEAD = /\{"created":"([^"\\]*)","entries":\[/y;
/** After the entries; groups: expires, format, vaultId, version. The manifest-level rules check the values. */
const TAIL = /,"expires":"([^"\\]*)","format":"([^"\\]*)","vaultId":"([^"\\]*)","version":([1-9][0-9]{0,15})\}$/y;

const MAX_MODE = 0o777;
/** The addon's scan (native/src/manifest-scan.c): 7 integers per entry, then the offset after the ']'. */
const FIELDS = 7;
const LOW31 = 2 ** 31;
const KIND_FILE = 1;
const KIND_DIR = 2;
const HEX_SHA256 = 64;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Whether a path of printable ASCII has a component longer than NAME_MAX (only a path longer than that can). */
function hasLongName(path: string): boolean {
  return path.length > MAX_NAME_BYTES && path.split('/').some((c) => c.length > MAX_NAME_BYTES);
}

/**
 * The entries from `start` (the first '{') through their closing ']': per entry kind (1 file, 2 dir,
 * 3 symlink), mode, path start and end, then the digest's start and the size as its low 31 bits and
 * the rest (file) or the target's start and end and 0 (symlink), byte offsets; then the offset after
 * the ']'. Null when they are not plain or not in strictly increasing order. Integers, so reading
 * them allocates nothing.
 */
export type EntryScan = (bytes: Uint8Array, start: number) => Int32Array | null;

let scanEntries: EntryScan | null = null;

// Why: the regular expression costs about 45M instructions of the main thread for a 10,000-entry
// manifest, the addon's scan of the same bytes a fraction of that (BENCHMARKS.md "Vault verify").
/** Reads entries with the addon's scan from now on (src/adapters/native.ts sets it when the addon loads); null: the regular expression. */
export function useEntryScan(scan: EntryScan | null): void {
  scanEntries = scan;
}

// The manifest, every rule checked, when the text is in the common canonical shape and valid; null
// otherwise (then the strict reader decides, and says why when it refuses). `bytes`: the text's
// UTF-8 bytes, for the addon's scan; the text must then have one character per byte.
export function readPlainManifest(text: string, limits: BundleLimits, bytes?: Uint8Array): Manifest | null {
  if (scanEntries !== null && bytes !== undefined && bytes.length === text.length) return readScanned(text, bytes, scanEntries, limits);
  HEAD.lastIndex = 0;
  const head = HEAD.exec(text);
  if (head === null) return null;
  let pos = HEAD.lastIndex;
  const { maxFileBytes, maxPathBytes } = limits;
  const entries: ManifestEntry[] = [];
  let total = 0;
  let links = false;
  let previous = '';
  // Directories by path; the parent of the previous entry and whether it is one (siblings are adjacent).
  const dirs = new Set<string>();
  let parent = '';
  let parentIsDir = false;
  if (text.charCodeAt(pos) === 0x5d) pos++;
  else {
    for (;;) {
      ENTRY.lastIndex = pos;
      const m = ENTRY.exec(text);
      if (m === null) return null;
      pos = ENTRY.lastIndex;
      let path = m[2];
      if (path !== undefined) {
        const mode = +m[1]!;
        if (mode > MAX_MODE) return null;
        const sha256 = m[3];
        if (sha256 === undefined) {
          entries.push({ mode, path, type: 'dir' });
          dirs.add(path);
        } else {
          const size = +m[4]!;
          if (sha256.length !== HEX_SHA256 || !(size <= MAX_SAFE && size <= maxFileBytes)) return null;
          total += size;
          entries.push({ mode, path, sha256, size, type: 'file' });
        }
      } else {
        path = m[5]!;
        const target = m[6]!;
        if (target.length > MAX_SYMLINK_TARGET_BYTES) return null;
        entries.push({ path, target, type: 'symlink' });
        links = true;
      }
      // Strictly after the previous path (so no duplicate); ASCII: UTF-16 order is code point order.
      if (!(previous < path) || path.length > maxPathBytes || hasLongName(path)) return null;
      previous = path;
      const cut = path.lastIndexOf('/');
      if (cut > 0) {
        if (cut !== parent.length || !path.startsWith(parent)) {
          parent = path.slice(0, cut);
          parentIsDir = dirs.has(parent);
        }
        if (!parentIsDir) return null;
      }
      if (m[7] === ']') break;
    }
  }
  return finish(text, pos, head[1]!, entries, total, links, limits);
}

/** readPlainManifest's entries from the addon's scan: the same checks, the text's own components and order already checked by the scan. */
function readScanned(text: string, bytes: Uint8Array, scan: EntryScan, limits: BundleLimits): Manifest | null {
  HEAD.lastIndex = 0;
  const head = HEAD.exec(text);
  if (head === null) return null;
  let pos = HEAD.lastIndex;
  const { maxFileBytes, maxPathBytes } = limits;
  const entries: ManifestEntry[] = [];
  let total = 0;
  let links = false;
  const dirs = new Set<string>();
  let parent = '';
  let parentIsDir = false;
  if (text.charCodeAt(pos) === 0x5d) pos++;
  else {
    const f = scan(bytes, pos);
    if (f === null) return null;
    const end = f.length - 1;
    for (let k = 0; k < end; k += FIELDS) {
      const start = f[k + 2]!;
      const stop = f[k + 3]!;
      if (stop - start > maxPathBytes) return null;
      const path = text.slice(start, stop);
      const kind = f[k]!;
      if (kind === KIND_FILE) {
        const high = f[k + 6]!;
        const size = high === 0 ? f[k + 5]! : high * LOW31 + f[k + 5]!;
        if (size > maxFileBytes) return null;
        total += size;
        const at = f[k + 4]!;
        entries.push({ mode: f[k + 1]!, path, sha256: text.slice(at, at + 64), size, type: 'file' });
      } else if (kind === KIND_DIR) {
        entries.push({ mode: f[k + 1]!, path, type: 'dir' });
        dirs.add(path);
      } else {
        entries.push({ path, target: text.slice(f[k + 4], f[k + 5]), type: 'symlink' });
        links = true;
      }
      const cut = path.lastIndexOf('/');
      if (cut > 0) {
        if (cut !== parent.length || !path.startsWith(parent)) {
          parent = path.slice(0, cut);
          parentIsDir = dirs.has(parent);
        }
        if (!parentIsDir) return null;
      }
    }
    pos = f[end]!;
  }
  return finish(text, pos, head[1]!, entries, total, links, limits);
}

/** After the entries: the tail, the total, the manifest-level rules and the symlinks' resolution. */
function finish(text: string, pos: number, created: string, entries: ManifestEntry[], total: number, links: boolean, limits: BundleLimits): Manifest | null {
  TAIL.lastIndex = pos;
  const tail = TAIL.exec(text);
  if (tail === null) return null;
  if (total > limits.maxTotalBytes) return null;
  const manifest = { created, entries, expires: tail[1], format: tail[2], vaultId: tail[3], version: +tail[4]! };
  const problems = new Problems();
  // The manifest-level rules (format, vault id, version, times, number of entries), as the strict reader runs them.
  checkTopLevel(manifest, limits, problems);
  // Symlinks resolve inside the release: the strict reader's own check, over these entries (all in order, none twice).
  if (links && problems.count === 0) {
    const index = new PathIndex(entries);
    for (let i = 0; i < entries.length; i++) index.add(i, entries[i]!.path, true);
    checkParentsAndLinks(index, problems);
  }
  return problems.count === 0 ? (manifest as Manifest) : null;
}

/**
 * The manifest-level values of a manifest whose entries native/src/verify-tree.c read and accepted
 * (ASCII text without a backslash, the head through `"entries":[` ending at `createdEnd` + 13, the
 * entries' ']' before `tailStart`, `entries` of them), checked as readPlainManifest's finish checks
 * them: the head and tail in the common shape, the number of entries, every manifest-level rule.
 * Null where that reader would not accept them (the caller then parses the manifest, which says why).
 */
export function readPlainManifestTop(bytes: Uint8Array, createdEnd: number, tailStart: number, entries: number, limits: BundleLimits): Omit<Manifest, 'entries'> | null {
  const headText = utf8Decode(bytes.subarray(0, createdEnd + '","entries":['.length), 'manifest');
  HEAD.lastIndex = 0;
  const head = HEAD.exec(headText);
  TAIL.lastIndex = 0;
  const tail = TAIL.exec(utf8Decode(bytes.subarray(tailStart), 'manifest'));
  if (head === null || HEAD.lastIndex !== headText.length || tail === null || entries > limits.maxEntries) return null;
  const top = { created: head[1]!, entries: [], expires: tail[1]!, format: tail[2]!, vaultId: tail[3]!, version: +tail[4]! };
  const problems = new Problems();
  checkTopLevel(top, limits, problems);
  if (problems.count !== 0) return null;
  const { created, expires, format, vaultId, version } = top;
  return { created, expires, format: format as Manifest['format'], vaultId, version };
}
