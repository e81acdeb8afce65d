// `sentinel vault verify VAULT ...`: the live tree's native pass is started before the command
// tree, the vault code and the manifest code are loaded, so its hashing threads run while the main
// thread loads them and checks the manifest and signatures (BENCHMARKS.md "CLI: whole processes").
// It does what verify itself does first: the vault's path checks, then a shared vault lock, then
// `current` read as verify reads it; verify takes the reading only for the very tree it checks and
// trusts nothing in it before its own checks pass (src/vault/early-reading.ts). Anything unusual
// starts nothing: verify then reads the tree itself.
import { lstatSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_LIMITS } from '../core/limits.js';
import { loadNative } from '../adapters/native.js';
import { nativeTreeInspector } from '../adapters/tree-inspector-native.js';
import { offerEarlyReading } from '../vault/early-reading.js';
import { holdSharedIfIdle } from '../vault/lock.js';
import { assertVaultPathLength, layoutOf, liveDirOfTarget, releaseFiles } from '../vault/paths.js';
import { assertSafeVault } from '../vault/safety.js';

// Why: `args` are the words after `vault verify`; the first must be the vault (commander parses
// the same words again; a different reading of them only means the early reading is not taken).
export function startEarlyVerify(args: readonly string[]): void {
  const path = args[0];
  if (path === undefined || path.startsWith('-') || args.includes('--help') || args.includes('-h')) return;
  const addon = loadNative();
  if (addon === null || typeof addon.inspectTreeAsync !== 'function' || typeof addon.flockFd !== 'function') return;
  const flock = (fd: number, op: number): boolean => addon.flockFd?.(fd, op) === true;
  let lock: { release: () => void } | null = null;
  try {
    const root = resolve(path);
    assertVaultPathLength(root);
    const layout = layoutOf(root);
    assertSafeVault(layout);
    if (!lstatSync(layout.config).isFile()) return;
    lock = holdSharedIfIdle(layout.lock, flock);
    if (lock === null) return;
    const live = liveDirOfTarget(readlinkSync(layout.current, 'utf8'));
    if (live === null) throw new Error('no live release');
    const tree = releaseFiles(layout.release(live)).tree;
    const maxFileBytes = DEFAULT_LIMITS.maxFileBytes;
    const reading = nativeTreeInspector(addon).start(tree, undefined, { maxFileBytes });
    offerEarlyReading({ lock: layout.lock, tree, maxFileBytes, reading, release: lock.release });
  } catch {
    // Verify meets the same condition itself and reports it.
    lock?.release();
  }
}
