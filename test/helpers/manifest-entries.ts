// Hand-made manifest entries and manifests for the manifest rule tests (test/core/manifest*.test.ts).
import { MANIFEST_FORMAT, parseManifest, type Manifest, type ManifestEntry } from '../../src/core/index.js';
import { ONE_YEAR_LATER, T0, sha256Hex, utf8 } from './core-factory.js';

/** SHA-256 of the empty string: the hash of an empty file. */
export const H = sha256Hex('');

export function manifestWith(entries: ManifestEntry[]): Manifest {
  return { format: MANIFEST_FORMAT, vaultId: 'phi-engine', version: 1, created: T0.toISOString(), expires: ONE_YEAR_LATER.toISOString(), entries };
}

/** Parse a hand-made value as manifest bytes (the route untrusted input takes): sorted keys, no whitespace. */
export function parseJson(v: unknown): Manifest {
  const sorted = (_k: string, x: unknown): unknown =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x;
  return parseManifest(utf8(JSON.stringify(v, sorted)));
}

export function file(path: string, extra: Partial<ManifestEntry> = {}): ManifestEntry {
  return { type: 'file', path, mode: 0o644, size: 0, sha256: H, ...extra } as ManifestEntry;
}

export const dirA: ManifestEntry = { type: 'dir', path: 'a', mode: 0o755 };
export const link = (path: string, target: string): ManifestEntry => ({ type: 'symlink', path, target });
