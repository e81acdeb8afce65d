// Every rule a manifest must satisfy (docs/FORMAT.md): shape and field types, limits, path rules,
// order and uniqueness, modes, hashes, parents, and symlinks that stay inside the release. The one
// place a manifest check starts: parseManifest, buildManifest and encodeManifest all run these. The
// path rules are in manifest-paths.ts, the rules across entries in manifest-tree-rules.ts.
// Written for one pass over 100,000s of entries: nothing is allocated per entry unless it is reported.
import { comparePaths, hasControlChar, hasLoneSurrogate, showPath, utf8Length } from './canonical-json.js';
import { DEFAULT_LIMITS, MAX_SYMLINK_TARGET_BYTES, type BundleLimits } from './limits.js';
import type { Manifest, ManifestEntry } from './manifest.js';
import { isPlainAsciiPath, pathProblem } from './manifest-paths.js';
import { Problems } from './manifest-problems.js';
import { PathIndex, checkParentsAndLinks } from './manifest-tree-rules.js';

export { assertSafePath, isPlainAsciiPath } from './manifest-paths.js';
export { Problems } from './manifest-problems.js';

/** Format tag inside every manifest: a v2 reader can tell the versions apart, a v1 reader refuses v2. */
export const MANIFEST_FORMAT = 'omnimind-sentinel/manifest/v1';

const VAULT_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** 64 lowercase hex characters (a SHA-256). One native regular-expression test: it runs once per file, mostly in cold code. */
const SHA256_RE = /^[0-9a-f]{64}$/;
function isSha256Hex(v: unknown): boolean {
  return typeof v === 'string' && SHA256_RE.test(v);
}

const MANIFEST_FIELDS = ['created', 'entries', 'expires', 'format', 'vaultId', 'version'];
const ENTRY_FIELDS: Record<ManifestEntry['type'], string[]> = {
  file: ['mode', 'path', 'sha256', 'size', 'type'],
  dir: ['mode', 'path', 'type'],
  symlink: ['path', 'target', 'type'],
};

type Rec = Record<string, unknown>;
const hasOwn = (rec: Rec, key: string): boolean => Object.prototype.hasOwnProperty.call(rec, key);

function isRecord(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether `rec` has exactly the `allowed` own keys (for-in over a plain object allocates nothing). */
function hasExactFields(rec: Rec, allowed: string[]): boolean {
  let n = 0;
  for (const k in rec) {
    if (!hasOwn(rec, k) || !allowed.includes(k)) return false;
    n++;
  }
  return n === allowed.length;
}

/** Names every missing and unknown field (called only when hasExactFields said no). */
function reportFields(rec: Rec, allowed: string[], where: string, problems: Problems): void {
  const keys = Object.keys(rec);
  for (const f of allowed) if (!hasOwn(rec, f)) problems.add('malformed-bundle', `${where}.${f}`, 'missing field');
  for (const f of keys) if (!allowed.includes(f)) problems.add('malformed-bundle', `${where}.${f}`, 'unknown field');
}

function checkTime(v: unknown, where: string, problems: Problems): number | null {
  if (typeof v !== 'string' || !TIME_RE.test(v)) {
    problems.add('malformed-bundle', where, 'must be an ISO-8601 UTC time YYYY-MM-DDTHH:MM:SS.sssZ');
    return null;
  }
  const t = Date.parse(v);
  if (!Number.isFinite(t) || new Date(t).toISOString() !== v) {
    problems.add('malformed-bundle', where, 'is not a real calendar time');
    return null;
  }
  return t;
}

/** `manifest.entries[i]`, and with the path: built only when a problem is reported. */
const entryWhere = (i: number): string => `manifest.entries[${i}]`;
const entryAt = (i: number, path: string): string => `${entryWhere(i)} ${showPath(path)}`;

function checkMode(v: unknown, i: number, path: string, problems: Problems): void {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o777) return;
  const where = `${entryAt(i, path)} mode`;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o7777) {
    problems.add('malformed-bundle', where, 'mode must be an integer 0..0o777');
    return;
  }
  if (v & 0o4000) problems.add('bad-path', where, 'setuid bit is not allowed');
  if (v & 0o2000) problems.add('bad-path', where, 'setgid bit is not allowed');
  if (v & 0o1000) problems.add('bad-path', where, 'sticky bit is not allowed');
}

function checkSymlinkTarget(t: unknown, i: number, path: string, problems: Problems): void {
  let why: string | null = null;
  if (typeof t !== 'string' || t === '') why = 'symlink target must be a non-empty string';
  else if (t.startsWith('/')) why = 'symlink target is absolute';
  else if (t.includes('\0') || hasControlChar(t) || hasLoneSurrogate(t)) why = 'symlink target contains NUL, a control character or a lone surrogate';
  else if (utf8Length(t) > MAX_SYMLINK_TARGET_BYTES) why = `symlink target is longer than ${MAX_SYMLINK_TARGET_BYTES} bytes`;
  if (why !== null) problems.add('bad-path', `${entryAt(i, path)} target`, why);
}

/** The manifest-level fields; returns the entries array when it may be checked entry by entry (also run by manifest-plain.ts). */
export function checkTopLevel(v: unknown, limits: BundleLimits, problems: Problems): unknown[] | null {
  if (!isRecord(v)) {
    problems.add('malformed-bundle', 'manifest', 'must be a JSON object');
    return null;
  }
  if (!hasExactFields(v, MANIFEST_FIELDS)) reportFields(v, MANIFEST_FIELDS, 'manifest', problems);
  if (hasOwn(v, 'format') && v.format !== MANIFEST_FORMAT) problems.add('malformed-bundle', 'manifest.format', `must be "${MANIFEST_FORMAT}"`);
  if (hasOwn(v, 'vaultId') && (typeof v.vaultId !== 'string' || !VAULT_ID_RE.test(v.vaultId))) {
    problems.add('malformed-bundle', 'manifest.vaultId', 'must match [a-z0-9][a-z0-9._-]{0,63}');
  }
  if (hasOwn(v, 'version') && (typeof v.version !== 'number' || !Number.isSafeInteger(v.version) || v.version < 1)) {
    problems.add('malformed-bundle', 'manifest.version', 'must be an integer >= 1');
  }
  const created = hasOwn(v, 'created') ? checkTime(v.created, 'manifest.created', problems) : null;
  const expires = hasOwn(v, 'expires') ? checkTime(v.expires, 'manifest.expires', problems) : null;
  if (created !== null && expires !== null && expires <= created) problems.add('malformed-bundle', 'manifest.expires', 'must be later than created');
  if (!hasOwn(v, 'entries')) return null;
  const entries = v.entries;
  if (!Array.isArray(entries)) {
    problems.add('malformed-bundle', 'manifest.entries', 'must be an array');
    return null;
  }
  if (entries.length > limits.maxEntries) {
    problems.add('too-large', 'manifest.entries', `${entries.length} entries exceed the limit of ${limits.maxEntries}`);
    return null;
  }
  return entries as unknown[];
}

/** Each entry on its own (shape, path, mode, size, hash, target), its order and uniqueness; returns the entries by path. */
function checkEachEntry(entries: unknown[], limits: BundleLimits, problems: Problems): PathIndex {
  const index = new PathIndex(entries as Rec[]);
  let total = 0;
  let previous: string | null = null;
  let previousPlain = false;
  let ordered = true;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!isRecord(e)) {
      problems.add('malformed-bundle', entryWhere(i), 'entry must be a JSON object');
      continue;
    }
    const type = e.type;
    if (type !== 'file' && type !== 'dir' && type !== 'symlink') {
      const shown = typeof type === 'string' ? `"${showPath(type)}"` : String(type);
      problems.add('bad-path', `${entryWhere(i)}.type`, `entry type ${shown} is not allowed (only file, dir, symlink: no devices, fifos or sockets)`);
      continue;
    }
    const fields = ENTRY_FIELDS[type];
    if (!hasExactFields(e, fields)) reportFields(e, fields, entryWhere(i), problems);
    const path = e.path;
    if (typeof path !== 'string') {
      problems.add('malformed-bundle', `${entryWhere(i)}.path`, 'must be a string');
      continue;
    }
    const plain = isPlainAsciiPath(path, limits);
    const why = plain ? null : pathProblem(path, limits);
    if (why !== null) problems.add('bad-path', entryAt(i, path), why);
    const outOfOrder = previous !== null && (plain && previousPlain ? previous > path : comparePaths(previous, path) > 0);
    previousPlain = plain;
    if (outOfOrder) ordered = false;
    if (!index.add(i, path, ordered)) problems.add('bad-path', entryAt(i, path), 'duplicate path');
    if (outOfOrder) problems.add('malformed-bundle', entryAt(i, path), 'entries are not sorted by path');
    previous = path;
    if (type === 'file' || type === 'dir') checkMode(e.mode, i, path, problems);
    if (type === 'file') {
      const size = e.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) problems.add('malformed-bundle', `${entryAt(i, path)} size`, 'must be an integer >= 0');
      else if (size > limits.maxFileBytes) problems.add('too-large', `${entryAt(i, path)} size`, `${size} bytes exceed the file limit of ${limits.maxFileBytes}`);
      else total += size;
      if (!isSha256Hex(e.sha256)) problems.add('malformed-bundle', `${entryAt(i, path)} sha256`, 'must be 64 lowercase hex characters');
    }
    if (type === 'symlink') checkSymlinkTarget(e.target, i, path, problems);
  }
  if (total > limits.maxTotalBytes) problems.add('too-large', 'manifest.entries', `payload of ${total} bytes exceeds the limit of ${limits.maxTotalBytes}`);
  return index;
}

// Every rule, problems collected rather than thrown, so one error can name every bad field.
export function checkManifest(v: unknown, limits: BundleLimits, problems: Problems): void {
  const entries = checkTopLevel(v, limits, problems);
  if (entries === null) return;
  checkParentsAndLinks(checkEachEntry(entries, limits, problems), problems);
}

// The check applied to every manifest from outside: shape, field types, limits, path and symlink rules.
export function assertManifest(v: unknown, limits: BundleLimits = DEFAULT_LIMITS): asserts v is Manifest {
  const problems = new Problems();
  checkManifest(v, limits, problems);
  problems.throwIfAny();
}
