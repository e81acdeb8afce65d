// The manifest model and its canonical bytes (docs/FORMAT.md): the signed bytes are exactly the
// canonical encoding, and a parser that accepts only that encoding leaves one byte string per manifest.
// The rules every manifest must satisfy live in manifest-rules.ts; the one-pass reader of the common
// manifest in manifest-plain.ts, the canonical reader for the rest in manifest-scan.ts.
import { bytesEqual } from './keys.js';
import { DEFAULT_LIMITS, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';
import { comparePaths, utf8Decode, utf8Encode } from './canonical-json.js';
import { MANIFEST_FORMAT, assertManifest } from './manifest-rules.js';
import { scanCanonicalManifest } from './manifest-scan.js';
import { readPlainManifest } from './manifest-plain.js';

export { canonicalJson, comparePaths, showPath, utf8Decode, utf8Encode } from './canonical-json.js';
export { MANIFEST_FORMAT, assertManifest, assertSafePath } from './manifest-rules.js';

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

// Strict reader: limits first; the common manifest read and checked in one pass (manifest-plain.ts,
// which only ever accepts); otherwise the canonical form read by the scanner and every rule of
// manifest-rules.ts; input outside the canonical shape takes the generic route, which says what is wrong.
export function parseManifest(bytes: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): Manifest {
  if (bytes.length > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `manifest of ${bytes.length} bytes exceeds the limit of ${limits.maxManifestBytes}`, { where: 'manifest' });
  }
  const text = utf8Decode(bytes, 'manifest');
  // Only ASCII text without a backslash can be the common shape (a UTF-8 byte per character): anything
  // else goes to the scanner at once instead of after a pass that would decline it.
  const plain = text.length === bytes.length && !text.includes('\\') ? readPlainManifest(text, limits, bytes) : null;
  if (plain !== null) return plain;
  const scanned = scanCanonicalManifest(text);
  if (scanned === null) return parseText(text, bytes, limits);
  // The scanner accepts only what the canonical encoder writes, so a value that passes every rule
  // re-encodes to exactly these bytes (test/core/properties.test.ts holds it to the generic route).
  assertManifest(scanned, limits);
  return scanned;
}

// The generic route: JSON.parse, every rule, then byte-identity with the re-encoding. What
// parseManifest falls back to; exported so tests can compare the two routes.
export function parseManifestGeneric(bytes: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): Manifest {
  if (bytes.length > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `manifest of ${bytes.length} bytes exceeds the limit of ${limits.maxManifestBytes}`, { where: 'manifest' });
  }
  return parseText(utf8Decode(bytes, 'manifest'), bytes, limits);
}

function parseText(text: string, bytes: Uint8Array, limits: BundleLimits): Manifest {
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
