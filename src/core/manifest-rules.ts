// Every rule a manifest must satisfy (docs/FORMAT.md): shape and field types, limits, path rules,
// order and uniqueness, modes, hashes, parents, and symlinks that stay inside the release. The one
// place a manifest check lives: parseManifest, buildManifest and encodeManifest all run these.
// Written for one pass over 100,000s of entries: nothing is allocated per entry unless it is reported.
import { comparePaths, hasControlChar, hasLoneSurrogate, showPath, utf8Length } from './canonical-json.js';
import { DEFAULT_LIMITS, MAX_NAME_BYTES, MAX_SYMLINK_DEPTH, MAX_SYMLINK_TARGET_BYTES, type BundleLimits } from './limits.js';
import { SentinelError, type ErrorCode } from './errors.js';
import type { Manifest, ManifestEntry } from './manifest.js';

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

/** Why a path is not a safe release path, or null when it is. */
function pathProblem(p: string, limits: BundleLimits): string | null {
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

/** Problems found in one pass, so a bad manifest is reported with every bad field it has (capped). */
export class Problems {
  readonly list: { code: ErrorCode; where: string; message: string }[] = [];
  count = 0;
  add(code: ErrorCode, where: string, message: string): void {
    this.count++;
    if (this.list.length < 20) this.list.push({ code, where, message });
  }
  throwIfAny(): void {
    const first = this.list[0];
    if (first === undefined) return;
    if (this.count === 1) throw new SentinelError(first.code, first.message, { where: first.where });
    const more = this.count > this.list.length ? `; and ${this.count - this.list.length} more` : '';
    throw new SentinelError(first.code, `${this.count} problems: ${this.list.map((p) => `${p.where}: ${p.message}`).join('; ')}${more}`, { where: first.where });
  }
}

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

/** The manifest-level fields; returns the entries array when it may be checked entry by entry. */
function checkTopLevel(v: unknown, limits: BundleLimits, problems: Problems): unknown[] | null {
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

/**
 * The entries that passed the per-entry checks, first occurrence of each path, in manifest order.
 * While they arrive in path order, lookups are a binary search and nothing is allocated per entry;
 * a map is built only for input out of order (where order no longer tells duplicates apart) or for
 * symlink resolution.
 */
class PathIndex {
  private readonly order: Int32Array;
  private count = 0;
  private map: Map<string, Rec> | null = null;
  /** Path of the last added entry (in path order, the only earlier path a new one can equal). */
  private last: string | null = null;

  constructor(private readonly entries: Rec[]) {
    this.order = new Int32Array(entries.length);
  }

  /** Adds entry i unless its path is already taken; `ordered` says whether it comes after every earlier path. Returns false for a duplicate. */
  add(i: number, path: string, ordered: boolean): boolean {
    if (!ordered) this.map ??= this.asMap();
    if (this.map !== null) {
      if (this.map.has(path)) return false;
      this.map.set(path, this.entries[i]!);
    } else if (path === this.last) return false;
    this.order[this.count++] = i;
    this.last = path;
    return true;
  }

  get(path: string): Rec | undefined {
    if (this.map !== null) return this.map.get(path);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[this.order[mid]!]!;
      const c = comparePaths(e.path as string, path);
      if (c === 0) return e;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  forEach(fn: (e: Rec, path: string) => void): void {
    for (let k = 0; k < this.count; k++) {
      const e = this.entries[this.order[k]!]!;
      fn(e, e.path as string);
    }
  }

  asMap(): Map<string, Rec> {
    if (this.map !== null) return this.map;
    const m = new Map<string, Rec>();
    this.forEach((e, path) => m.set(path, e));
    return m;
  }
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

/** The manifest as a tree, so symlink resolution costs one map lookup per component. */
interface TreeNode {
  entry: Rec | null;
  children: Map<string, TreeNode>;
}

function treeOf(byPath: ReadonlyMap<string, Rec>): TreeNode {
  const root: TreeNode = { entry: null, children: new Map() };
  const nodes = new Map<string, TreeNode>([['', root]]);
  const nodeAt = (path: string): TreeNode => {
    let n = nodes.get(path);
    if (n === undefined) {
      n = { entry: null, children: new Map() };
      nodes.set(path, n);
      const cut = path.lastIndexOf('/');
      nodeAt(cut < 0 ? '' : path.slice(0, cut)).children.set(path.slice(cut + 1), n);
    }
    return n;
  };
  for (const [path, e] of byPath) if (path !== '') nodeAt(path).entry = e;
  return root;
}

/** Where a lookup stands: the nodes from the root down (null once below a name the manifest does not list). */
type Walk = (TreeNode | null)[];

/** The location a symlink target resolves to, starting in directory `from`, or why it cannot be used. */
function resolveTarget(
  root: TreeNode,
  from: Walk,
  target: string,
  budget: { follows: number },
): Walk | 'escapes the release' | 'too many levels of symlinks' | 'passes through an absolute symlink' {
  if (target.startsWith('/')) return 'passes through an absolute symlink';
  let walk = [...from];
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (walk.length === 0) return 'escapes the release';
      walk.pop();
      continue;
    }
    const parent = walk.length === 0 ? root : walk[walk.length - 1]!;
    const node = parent === null ? null : (parent.children.get(c) ?? null);
    const e = node?.entry;
    if (e?.type === 'symlink' && typeof e.target === 'string') {
      if (++budget.follows > MAX_SYMLINK_DEPTH) return 'too many levels of symlinks';
      const r = resolveTarget(root, walk, e.target, budget);
      if (typeof r === 'string') return r;
      walk = r;
    } else walk.push(node);
  }
  return walk;
}

/** The walk to a directory given as components (null where a component is not listed). */
function walkTo(root: TreeNode, components: string[]): Walk {
  const walk: Walk = [];
  let n: TreeNode | null = root;
  for (const c of components) {
    n = n === null ? null : (n.children.get(c) ?? null);
    walk.push(n);
  }
  return walk;
}

/** Rules across entries: every parent is a listed directory, every symlink resolves inside the release. */
function checkTree(byPath: PathIndex, problems: Problems): void {
  let root: TreeNode | null = null;
  // Siblings are adjacent in path order: the parent looked up last is usually the next one's too.
  let lastParent = '';
  let lastParentEntry: Rec | undefined;
  byPath.forEach((e, path) => {
    const cut = path.lastIndexOf('/');
    if (cut > 0) {
      if (cut !== lastParent.length || !path.startsWith(lastParent)) {
        lastParent = path.slice(0, cut);
        lastParentEntry = byPath.get(lastParent);
      }
      const parent = lastParentEntry;
      if (parent?.type !== 'dir') {
        const at = `manifest entry ${showPath(path)}`;
        if (parent === undefined) problems.add('bad-path', at, `parent directory ${showPath(path.slice(0, cut))} is not listed`);
        else if (parent.type === 'symlink') problems.add('bad-path', at, 'path passes through a symlink');
        else problems.add('bad-path', at, 'parent is not a directory');
      }
    }
    if (e.type === 'symlink' && typeof e.target === 'string' && e.target !== '' && !e.target.startsWith('/')) {
      root ??= treeOf(byPath.asMap());
      // The link itself counts: the kernel follows it too when its path is opened.
      const r = resolveTarget(root, walkTo(root, path.split('/').slice(0, -1)), e.target, { follows: 1 });
      if (typeof r === 'string') {
        const why = r === 'too many levels of symlinks' ? `symlink loop or chain of more than ${MAX_SYMLINK_DEPTH} links (too many levels of symlinks)` : `symlink ${r}`;
        problems.add('bad-path', `manifest entry ${showPath(path)} target`, why);
      }
    }
  });
}

// Every rule, problems collected rather than thrown, so one error can name every bad field.
export function checkManifest(v: unknown, limits: BundleLimits, problems: Problems): void {
  const entries = checkTopLevel(v, limits, problems);
  if (entries === null) return;
  checkTree(checkEachEntry(entries, limits, problems), problems);
}

// The check applied to every manifest from outside: shape, field types, limits, path and symlink rules.
export function assertManifest(v: unknown, limits: BundleLimits = DEFAULT_LIMITS): asserts v is Manifest {
  const problems = new Problems();
  checkManifest(v, limits, problems);
  problems.throwIfAny();
}
