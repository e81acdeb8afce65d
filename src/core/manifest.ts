// The manifest model and its canonical bytes (docs/FORMAT.md): the signed bytes are exactly the
// canonical encoding, and a parser that accepts only that encoding leaves one byte string per manifest.
import { bytesEqual } from './keys.js';
import { DEFAULT_LIMITS, MAX_NAME_BYTES, MAX_SYMLINK_DEPTH, MAX_SYMLINK_TARGET_BYTES, type BundleLimits } from './limits.js';
import { SentinelError, type ErrorCode } from './errors.js';

// Text codecs are web-standard globals in every supported runtime; declared here because core compiles without Node types.
declare const TextEncoder: new () => { encode(s: string): Uint8Array };
declare const TextDecoder: new (label: string, opts: { fatal: boolean; ignoreBOM: boolean }) => { decode(b: Uint8Array): string };

/** Format tag inside every manifest: a v2 reader can tell the versions apart, a v1 reader refuses v2. */
export const MANIFEST_FORMAT = 'omnimind-sentinel/manifest/v1';
/** A regular file: its bytes come from the payload and must match size and SHA-256. */
export type FileEntry = { type: 'file'; path: string; mode: number; size: number; sha256: string };
/** A directory: listed explicitly, so every parent and its mode are signed too. */
export type DirEntry = { type: 'dir'; path: string; mode: number };
/** A relative symlink that resolves inside the release. */
export type SymlinkEntry = { type: 'symlink'; path: string; target: string };
/** The only three kinds of entry: devices, fifos and sockets are not representable. */
export type ManifestEntry = FileEntry | DirEntry | SymlinkEntry;

/** What a release is: every entry of the tree, bound to one vault, one version and a validity window. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  vaultId: string;
  version: number;
  created: string;
  expires: string /* ISO-8601 UTC, YYYY-MM-DDTHH:MM:SS.sssZ */;
  entries: ManifestEntry[] /* sorted by path */;
}


const VAULT_ID_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** 64 lowercase hex characters (a SHA-256), checked without a regular expression: it runs once per file. */
function isSha256Hex(v: unknown): boolean {
  if (typeof v !== 'string' || v.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** C0 controls and DEL: they would break one-line error reports, logs and `sha256sum -c` listings. */
function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

const MANIFEST_FIELDS = ['created', 'entries', 'expires', 'format', 'vaultId', 'version'];
const ENTRY_FIELDS: Record<ManifestEntry['type'], string[]> = {
  file: ['mode', 'path', 'sha256', 'size', 'type'],
  dir: ['mode', 'path', 'type'],
  symlink: ['path', 'target', 'type'],
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// UTF-8 of a well-formed string; a lone surrogate has no UTF-8 form and is refused rather than replaced.
export function utf8Encode(s: string): Uint8Array {
  if (LONE_SURROGATE_RE.test(s)) throw new SentinelError('malformed-bundle', 'string contains a lone UTF-16 surrogate (not representable in UTF-8)');
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
function utf8Length(s: string): number {
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
  return hasControlChar(p) || LONE_SURROGATE_RE.test(p) ? JSON.stringify(p) : p;
}

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

// Path rules of docs/FORMAT.md: relative, '/'-separated, normalised, no traversal, within PATH_MAX/NAME_MAX.
export function assertSafePath(p: string, limits: BundleLimits = DEFAULT_LIMITS): void {
  if (typeof p !== 'string') throw new SentinelError('bad-path', 'path must be a string');
  const why = pathProblem(p, limits);
  if (why !== null) throw new SentinelError('bad-path', why, { where: showPath(p) });
}

/** Problems found in one pass, so a bad manifest is reported with every bad field it has (capped). */
class Problems {
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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFields(rec: Record<string, unknown>, allowed: string[], where: string | (() => string), problems: Problems): void {
  const keys = Object.keys(rec);
  if (keys.length === allowed.length && keys.every((k) => allowed.includes(k))) return;
  const w = typeof where === 'string' ? where : where();
  for (const f of allowed) if (!Object.prototype.hasOwnProperty.call(rec, f)) problems.add('malformed-bundle', `${w}.${f}`, 'missing field');
  for (const f of keys) if (!allowed.includes(f)) problems.add('malformed-bundle', `${w}.${f}`, 'unknown field');
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

function checkMode(v: unknown, entryAt: () => string, problems: Problems): void {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0o777) return;
  const where = `${entryAt()} mode`;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o7777) {
    problems.add('malformed-bundle', where, 'mode must be an integer 0..0o777');
    return;
  }
  if (v & 0o4000) problems.add('bad-path', where, 'setuid bit is not allowed');
  if (v & 0o2000) problems.add('bad-path', where, 'setgid bit is not allowed');
  if (v & 0o1000) problems.add('bad-path', where, 'sticky bit is not allowed');
}

/** The manifest as a tree, so symlink resolution costs one map lookup per component. */
interface TreeNode {
  entry: Record<string, unknown> | null;
  children: Map<string, TreeNode>;
}

function treeOf(byPath: ReadonlyMap<string, Record<string, unknown>>): TreeNode {
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

function checkManifest(v: unknown, limits: BundleLimits, problems: Problems): void {
  if (!isRecord(v)) {
    problems.add('malformed-bundle', 'manifest', 'must be a JSON object');
    return;
  }
  checkFields(v, MANIFEST_FIELDS, 'manifest', problems);
  if (Object.prototype.hasOwnProperty.call(v, 'format') && v.format !== MANIFEST_FORMAT) problems.add('malformed-bundle', 'manifest.format', `must be "${MANIFEST_FORMAT}"`);
  if (Object.prototype.hasOwnProperty.call(v, 'vaultId') && (typeof v.vaultId !== 'string' || !VAULT_ID_RE.test(v.vaultId))) {
    problems.add('malformed-bundle', 'manifest.vaultId', 'must match [a-z0-9][a-z0-9._-]{0,63}');
  }
  if (Object.prototype.hasOwnProperty.call(v, 'version') && (typeof v.version !== 'number' || !Number.isSafeInteger(v.version) || v.version < 1)) {
    problems.add('malformed-bundle', 'manifest.version', 'must be an integer >= 1');
  }
  const created = Object.prototype.hasOwnProperty.call(v, 'created') ? checkTime(v.created, 'manifest.created', problems) : null;
  const expires = Object.prototype.hasOwnProperty.call(v, 'expires') ? checkTime(v.expires, 'manifest.expires', problems) : null;
  if (created !== null && expires !== null && expires <= created) problems.add('malformed-bundle', 'manifest.expires', 'must be later than created');
  if (!Object.prototype.hasOwnProperty.call(v, 'entries')) return;
  const entries = v.entries;
  if (!Array.isArray(entries)) {
    problems.add('malformed-bundle', 'manifest.entries', 'must be an array');
    return;
  }
  if (entries.length > limits.maxEntries) {
    problems.add('too-large', 'manifest.entries', `${entries.length} entries exceed the limit of ${limits.maxEntries}`);
    return;
  }
  checkEntries(entries, limits, problems);
}

function checkEntries(entries: unknown[], limits: BundleLimits, problems: Problems): void {
  const byPath = new Map<string, Record<string, unknown>>();
  let total = 0;
  let previous: string | null = null;
  entries.forEach((e, i) => {
    const where = (): string => `manifest.entries[${i}]`;
    if (!isRecord(e)) {
      problems.add('malformed-bundle', where(), 'entry must be a JSON object');
      return;
    }
    const type = e.type;
    if (type !== 'file' && type !== 'dir' && type !== 'symlink') {
      const shown = typeof type === 'string' ? `"${showPath(type)}"` : String(type);
      problems.add('bad-path', `${where()}.type`, `entry type ${shown} is not allowed (only file, dir, symlink: no devices, fifos or sockets)`);
      return;
    }
    checkFields(e, ENTRY_FIELDS[type], where, problems);
    const path = e.path;
    if (typeof path !== 'string') {
      problems.add('malformed-bundle', `${where()}.path`, 'must be a string');
      return;
    }
    const at = (): string => `${where()} ${showPath(path)}`;
    const why = pathProblem(path, limits);
    if (why !== null) problems.add('bad-path', at(), why);
    if (byPath.has(path)) problems.add('bad-path', at(), 'duplicate path');
    else byPath.set(path, e);
    if (previous !== null && comparePaths(previous, path) > 0) problems.add('malformed-bundle', at(), 'entries are not sorted by path');
    previous = path;
    if (type === 'file' || type === 'dir') checkMode(e.mode, at, problems);
    if (type === 'file') {
      const size = e.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) problems.add('malformed-bundle', `${at()} size`, 'must be an integer >= 0');
      else if (size > limits.maxFileBytes) problems.add('too-large', `${at()} size`, `${size} bytes exceed the file limit of ${limits.maxFileBytes}`);
      else total += size;
      if (!isSha256Hex(e.sha256)) problems.add('malformed-bundle', `${at()} sha256`, 'must be 64 lowercase hex characters');
    }
    if (type === 'symlink') {
      const t = e.target;
      if (typeof t !== 'string' || t === '') problems.add('bad-path', `${at()} target`, 'symlink target must be a non-empty string');
      else if (t.startsWith('/')) problems.add('bad-path', `${at()} target`, 'symlink target is absolute');
      else if (t.includes('\0') || hasControlChar(t) || LONE_SURROGATE_RE.test(t)) problems.add('bad-path', `${at()} target`, 'symlink target contains NUL, a control character or a lone surrogate');
      else if (utf8Length(t) > MAX_SYMLINK_TARGET_BYTES) problems.add('bad-path', `${at()} target`, `symlink target is longer than ${MAX_SYMLINK_TARGET_BYTES} bytes`);
    }
  });
  if (total > limits.maxTotalBytes) problems.add('too-large', 'manifest.entries', `payload of ${total} bytes exceeds the limit of ${limits.maxTotalBytes}`);
  let root: TreeNode | null = null;
  for (const [path, e] of byPath) {
    const cut = path.lastIndexOf('/');
    if (cut > 0) {
      const parent = byPath.get(path.slice(0, cut));
      if (parent?.type !== 'dir') {
        const at = `manifest entry ${showPath(path)}`;
        if (parent === undefined) problems.add('bad-path', at, `parent directory ${showPath(path.slice(0, cut))} is not listed`);
        else if (parent.type === 'symlink') problems.add('bad-path', at, 'path passes through a symlink');
        else problems.add('bad-path', at, 'parent is not a directory');
      }
    }
    if (e.type === 'symlink' && typeof e.target === 'string' && e.target !== '' && !e.target.startsWith('/')) {
      root ??= treeOf(byPath);
      // The link itself counts: the kernel follows it too when its path is opened.
      const r = resolveTarget(root, walkTo(root, path.split('/').slice(0, -1)), e.target, { follows: 1 });
      if (typeof r === 'string') {
        const why = r === 'too many levels of symlinks' ? `symlink loop or chain of more than ${MAX_SYMLINK_DEPTH} links (too many levels of symlinks)` : `symlink ${r}`;
        problems.add('bad-path', `manifest entry ${showPath(path)} target`, why);
      }
    }
  }
}

// The check applied to every manifest from outside: shape, field types, limits, path and symlink rules.
export function assertManifest(v: unknown, limits: BundleLimits = DEFAULT_LIMITS): asserts v is Manifest {
  const problems = new Problems();
  checkManifest(v, limits, problems);
  problems.throwIfAny();
}

// Used by signers: sorts the entries, fixes the time format, and refuses anything a verifier would refuse.
export function buildManifest(input: { vaultId: string; version: number; created: Date; expires: Date; entries: ManifestEntry[] }): Manifest {
  const iso = (d: Date, field: string): string => {
    if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new SentinelError('usage', `${field} is not a valid date`, { where: field });
    return d.toISOString();
  };
  const entries = input.entries.map((e): ManifestEntry => {
    switch (e.type) {
      case 'file':
        return { type: 'file', path: e.path, mode: e.mode, size: e.size, sha256: e.sha256 };
      case 'dir':
        return { type: 'dir', path: e.path, mode: e.mode };
      case 'symlink':
        return { type: 'symlink', path: e.path, target: e.target };
      default:
        return e;
    }
  });
  entries.sort((a, b) => comparePaths(a.path, b.path));
  const m = {
    format: MANIFEST_FORMAT,
    vaultId: input.vaultId,
    version: input.version,
    created: iso(input.created, 'created'),
    expires: iso(input.expires, 'expires'),
    entries,
  };
  assertManifest(m);
  return m;
}

/** Canonical JSON of an already validated manifest, written directly (same bytes as canonicalJson, several times faster). */
function canonicalManifestText(m: Manifest): string {
  const parts: string[] = new Array<string>(m.entries.length);
  m.entries.forEach((e, i) => {
    const path = JSON.stringify(e.path);
    if (e.type === 'file') parts[i] = `{"mode":${e.mode},"path":${path},"sha256":"${e.sha256}","size":${e.size},"type":"file"}`;
    else if (e.type === 'dir') parts[i] = `{"mode":${e.mode},"path":${path},"type":"dir"}`;
    else parts[i] = `{"path":${path},"target":${JSON.stringify(e.target)},"type":"symlink"}`;
  });
  return (
    `{"created":${JSON.stringify(m.created)},"entries":[${parts.join(',')}],"expires":${JSON.stringify(m.expires)},` +
    `"format":${JSON.stringify(m.format)},"vaultId":${JSON.stringify(m.vaultId)},"version":${m.version}}`
  );
}

function encodeUnchecked(m: Manifest): Uint8Array {
  return utf8Encode(canonicalManifestText(m));
}

// The canonical bytes: exactly what is signed and what is stored next to a release.
export function encodeManifest(m: Manifest): Uint8Array {
  assertManifest(m);
  return encodeUnchecked(m);
}

// Strict reader: limits first, then shape, then byte-identity with the re-encoding (one byte string per manifest).
export function parseManifest(bytes: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): Manifest {
  if (bytes.length > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `manifest of ${bytes.length} bytes exceeds the limit of ${limits.maxManifestBytes}`, { where: 'manifest' });
  }
  const text = utf8Decode(bytes, 'manifest');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (cause) {
    throw new SentinelError('malformed-bundle', 'manifest is not valid JSON', { where: 'manifest', cause });
  }
  assertManifest(v, limits);
  const again = encodeUnchecked(v);
  if (!bytesEqual(again, bytes)) {
    let i = 0;
    while (i < again.length && i < bytes.length && again[i] === bytes[i]) i++;
    throw new SentinelError('malformed-bundle', `manifest is not in canonical form (first difference at byte ${i})`, { where: 'manifest' });
  }
  return v;
}

// Where each file's bytes sit in the payload: manifest order, no framing, so offsets follow from sizes alone.
export function payloadLayout(m: Manifest): { files: { entry: FileEntry; offset: number }[]; totalBytes: number } {
  const files: { entry: FileEntry; offset: number }[] = [];
  let offset = 0;
  for (const entry of m.entries) {
    if (entry.type !== 'file') continue;
    files.push({ entry, offset });
    offset += entry.size;
  }
  return { files, totalBytes: offset };
}
