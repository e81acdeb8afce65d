// A kernel lock on an open file (flock(2)), held by the open file description: it dies with its
// holder (SIGKILL, a crash), needs no pid bookkeeping and never a stale-lock guess
// (docs/VAULT.md#locking). Native flock where the addon is built; otherwise util-linux's flock(1)
// locks the same open file description, handed to it as fd 3, and the lock outlives that child.
import { SentinelError } from '../core/errors.js';
import { loadNative } from './native.js';
import type { NativeAddon } from './native.js';

export type LockMode = 'shared' | 'exclusive';

/** How a lock is taken: the kind, for tests and messages, and one attempt-until-deadline call. */
export interface FileLocker {
  readonly kind: 'native' | 'flock(1)';
  /** True once `fd` holds the lock; false when another holder still conflicts after `timeoutMs`. */
  lock(fd: number, mode: LockMode, timeoutMs: number): Promise<boolean>;
}

const LOCK_SH = 1;
const LOCK_EX = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class NativeLocker implements FileLocker {
  readonly kind = 'native' as const;
  // Built only by nativeLocker, after it checked that the addon has flockFd.
  constructor(private readonly addon: NativeAddon) {}
  async lock(fd: number, mode: LockMode, timeoutMs: number): Promise<boolean> {
    const op = mode === 'shared' ? LOCK_SH : LOCK_EX;
    const deadline = Date.now() + timeoutMs;
    // LOCK_NB attempts, 2 ms apart at first and at most 50 ms apart: the event loop never blocks.
    for (let wait = 2; ; wait = Math.min(50, wait * 2)) {
      if (this.addon.flockFd!(fd, op)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await sleep(Math.min(wait, left));
    }
  }
}

class FlockToolLocker implements FileLocker {
  readonly kind = 'flock(1)' as const;
  async lock(fd: number, mode: LockMode, timeoutMs: number): Promise<boolean> {
    const wait = timeoutMs <= 0 ? ['-n'] : ['-w', (timeoutMs / 1000).toFixed(3)];
    // flock(1) FD: locks the descriptor it inherited as fd 3, which is our open file description.
    // The process adapter is loaded only here: verify with the addon never pulls it in.
    const { runWithFd } = await import('./process.js');
    const r = await runWithFd(['flock', mode === 'shared' ? '-s' : '-x', ...wait, '-E', '75', '3'], fd, timeoutMs + 10_000);
    if (r.exitCode === 0) return true;
    if (r.exitCode === 75) return false;
    if (r.startError !== null) throw new SentinelError('unavailable', `cannot run flock(1) for the vault lock: ${r.startError}`, { where: 'flock' });
    throw new SentinelError('io', `flock(1) failed (exit ${String(r.exitCode)}): ${r.stderr.trim()}`, { where: 'flock' });
  }
}

// The native locker when the addon has flockFd, else flock(1).
export function nativeLocker(addon: NativeAddon | null = loadNative()): FileLocker | null {
  return addon === null || typeof addon.flockFd !== 'function' ? null : new NativeLocker(addon);
}

export function flockToolLocker(): FileLocker {
  return new FlockToolLocker();
}

let chosen: FileLocker | undefined;

// Why: every vault writer and verify take the one kernel lock through this.
export function fileLocker(): FileLocker {
  chosen ??= nativeLocker() ?? flockToolLocker();
  return chosen;
}
