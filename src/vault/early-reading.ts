// Verify's tree reading started by the CLI before the rest of the program was loaded
// (src/cli/early-verify.ts), handed to verify when it reaches the same tree: the native pass then
// hashes while the commands, the manifest code and the signatures are loaded and checked. It is
// the reading verify would start itself (docs/VAULT.md#verify-fail-closed-invariants-5-and-6):
// after the vault's path checks, under a shared vault lock taken while no operation was in
// progress or interrupted and held since; nothing read is trusted before verify's own checks pass.
import type { TreeReading } from '../adapters/tree-inspector.js';

/** One early reading: the lock file its shared lock is on, the tree it reads and with which limit. */
export interface EarlyReading {
  lock: string;
  tree: string;
  maxFileBytes: number;
  reading: TreeReading;
  /** Drops the shared lock. */
  release(): void;
}

let early: EarlyReading | null = null;

export function offerEarlyReading(e: EarlyReading): void {
  early = e;
}

/** Whether an early reading holds a shared lock on `lock` (an exclusive attempt on it would fail against our own lock). */
export function earlyLockHeld(lock: string): boolean {
  return early !== null && early.lock === lock;
}

/** Waits for the early reading's work to end and drops it and its lock. */
export async function dropEarlyReading(): Promise<void> {
  const e = early;
  early = null;
  if (e === null) return;
  await e.reading.abandon();
  e.release();
}

/**
 * The early reading of `tree` with `maxFileBytes`, or null (none, or of another tree: then it is
 * dropped). The caller holds its own shared lock; abandon() of the answer also drops the early lock.
 */
export function takeEarlyReading(tree: string, maxFileBytes: number): TreeReading | null {
  const e = early;
  if (e === null) return null;
  if (e.tree !== tree || e.maxFileBytes !== maxFileBytes) {
    void dropEarlyReading();
    return null;
  }
  early = null;
  return {
    finish: (expected, onProgress) => e.reading.finish(expected, onProgress),
    check: (expected, onProgress) => e.reading.check(expected, onProgress),
    ...(e.reading.checkSigned === undefined ? {} : { checkSigned: (bytes, limits) => e.reading.checkSigned?.(bytes, limits) ?? Promise.resolve(null) }),
    abandon: async () => {
      await e.reading.abandon();
      e.release();
    },
  };
}
