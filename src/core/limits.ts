// Size limits for reading bundles, in one typed place, so every reader enforces the same bounds
// before it allocates or parses anything (size limits enforced while reading).
import { SentinelError } from './errors.js';

/** Bounds on an untrusted bundle; sizes in bytes, counts in items. */
export interface BundleLimits {
  /** Largest manifest (canonical JSON) accepted, in bytes. */
  maxManifestBytes: number;
  /** Largest signature block accepted, in bytes. */
  maxSignatureBlockBytes: number;
  /** Most entries (files, dirs, symlinks) in one manifest. */
  maxEntries: number;
  /** Longest entry path, in UTF-8 bytes; at most MAX_ENTRY_PATH_BYTES (docs/FORMAT.md#25-limits). */
  maxPathBytes: number;
  /** Largest single file, in bytes. */
  maxFileBytes: number;
  /** Largest payload (sum of all file sizes), in bytes. */
  maxTotalBytes: number;
}

/**
 * Longest entry path, in UTF-8 bytes (docs/FORMAT.md#25-limits): PATH_MAX (4096, with its NUL) less
 * what the vault puts in front of an entry (its own path, at most MAX_VAULT_PATH_BYTES, and
 * `/releases/<release dir>/tree/`), so every entry can be opened by its full path.
 */
export const MAX_ENTRY_PATH_BYTES = 3072;
/** Longest vault path `vault init` and every vault operation accept, in bytes. */
export const MAX_VAULT_PATH_BYTES = 960;
/** Longest symlink target, in UTF-8 bytes: symlink(2) refuses PATH_MAX (4096) and more. */
export const MAX_SYMLINK_TARGET_BYTES = 4095;
/**
 * Most symlinks one symlink's resolution may follow, the link itself included: Linux allows 40 per
 * lookup (MAXSYMLINKS); 8 are left for `VAULT/current` and links on the way to the vault.
 */
export const MAX_SYMLINK_DEPTH = 32;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// Generous enough for a 200k-file release or a 64 GiB payload, small enough to refuse a hostile head early.
export const DEFAULT_LIMITS: BundleLimits = Object.freeze({
  maxManifestBytes: 64 * MiB,
  maxSignatureBlockBytes: 64 * 1024,
  maxEntries: 200_000,
  maxPathBytes: MAX_ENTRY_PATH_BYTES,
  maxFileBytes: 16 * GiB,
  maxTotalBytes: 64 * GiB,
});

/** Most signatures in one signature block (one per key; a keyring larger than this makes no sense). */
export const MAX_SIGNATURES = 64;

/** Longest single path component, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255;

const LIMIT_FIELDS = ['maxManifestBytes', 'maxSignatureBlockBytes', 'maxEntries', 'maxPathBytes', 'maxFileBytes', 'maxTotalBytes'] as const;

// Limits may come from a config file: each must be a positive safe integer, and the u32 framing caps the two block sizes.
export function assertBundleLimits(v: unknown, where = 'limits'): asserts v is BundleLimits {
  if (typeof v !== 'object' || v === null) throw new SentinelError('config', 'limits must be an object', { where });
  const rec = v as Record<string, unknown>;
  const bad: string[] = [];
  for (const f of LIMIT_FIELDS) {
    const n = rec[f];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) bad.push(`${f} must be a positive integer`);
  }
  for (const f of Object.keys(rec)) if (!(LIMIT_FIELDS as readonly string[]).includes(f)) bad.push(`unknown field ${f}`);
  if (typeof rec.maxPathBytes === 'number' && rec.maxPathBytes > MAX_ENTRY_PATH_BYTES) bad.push(`maxPathBytes must be at most ${MAX_ENTRY_PATH_BYTES} (entries must stay openable by their full path)`);
  for (const f of ['maxManifestBytes', 'maxSignatureBlockBytes'] as const) {
    const n = rec[f];
    if (typeof n === 'number' && n > 0xffffffff) bad.push(`${f} must fit the u32 length field (<= 4294967295)`);
  }
  if (bad.length > 0) throw new SentinelError('config', bad.join('; '), { where });
}
