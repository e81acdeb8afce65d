// How a release tree is read for `vault verify`: one interface, two ways (the addon's one native
// pass, or an lstat walk with the flag store and the hashing workers), both giving the entries
// core's checkTree compares with the manifest (docs/VAULT.md#tree-check).
import type { BundleLimits } from '../core/limits.js';
import type { ExpectedEntry, ObservedTree, TreeCheck } from '../core/tree-check.js';
import type { FlagStore } from './flags.js';
import type { HashPool } from './hash.js';
import { loadNative } from './native.js';
import { nativeTreeInspector } from './tree-inspector-native.js';
import { walkTreeInspector } from './tree-inspector-walk.js';

/** An intact tree found by checkSigned, and the manifest-level values it read. */
export interface SignedTreeCheck {
  version: number;
  vaultId: string;
  check: TreeCheck;
}

/** A reading of one tree under way. */
export interface TreeReading {
  /** The tree as observed, for the verified manifest's entries; onProgress(doneBytes, totalBytes). */
  finish(expected: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<ObservedTree>;
  /**
   * Instead of finish(): core's checkTree of the tree against the verified manifest's entries; the
   * native pass answers an intact tree from its records without building an entry per path.
   */
  check(expected: readonly ExpectedEntry[], onProgress?: (done: number, total: number) => void): Promise<TreeCheck>;
  /**
   * Only where the addon can (the native pass): with the signed manifest's bytes whose signatures
   * verified, checkTree's answer for an intact tree and the manifest's version and vault id, compared
   * in the addon without parsing the entries; null for anything else (a manifest the one-pass reader
   * would not read, any difference, a listing in another order, symlinks): then check() or finish()
   * over the parsed manifest names every problem. Never rejects.
   */
  checkSigned?(manifestBytes: Uint8Array, limits: BundleLimits): Promise<SignedTreeCheck | null>;
  /** Waits for any work under way and drops it (the manifest did not verify). Never rejects. */
  abandon(): Promise<void>;
}

// Why: verify chooses how to read a tree by this explicit capability (VaultDeps.inspector), never
// by what class its flag store is, so a test can run the same check through either way.
export interface TreeInspector {
  readonly kind: 'native' | 'walk';
  /**
   * Starts reading `root`. With `expected` undefined the manifest is not verified yet: the native
   * pass starts at once and hashes every regular file of at most `maxFileBytes`; the walk waits
   * for finish(). Nothing read is trusted before finish() gets the verified entries.
   */
  start(root: string, expected: readonly ExpectedEntry[] | undefined, limits: { maxFileBytes: number }): TreeReading;
}

// Why: the fast way where the flag store reads flags through the addon (the native pass reads the
// same bits itself); the walk wherever the store is chattr or a test's own, so that store is used.
export function defaultTreeInspector(flags: FlagStore, hash: HashPool): TreeInspector {
  const addon = flags.kind === 'ioctl' ? loadNative() : null;
  if (addon !== null && typeof addon.inspectTreeAsync === 'function') return nativeTreeInspector(addon);
  return walkTreeInspector(flags, hash);
}
