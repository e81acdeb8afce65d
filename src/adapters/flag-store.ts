// The flag store's contract: the inode flag bits this product uses, the FlagStore interface both
// stores implement (flag-store-ioctl.ts, flag-store-chattr.ts), and the errors they raise. Every
// refusal is an error with the path, never "nothing to do" (docs/VAULT.md#invariants 5).
import { SentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import { isSystemError } from './native.js';

// The inode flag bits of <linux/fs.h> this product uses.
export const FS_IMMUTABLE_FL = 0x10;
export const FS_APPEND_FL = 0x20;

// One way of reading and changing inode flags; the batch forms are optional so that test doubles
// stay small, and seal/unseal use them when present (one call instead of one per path).
export interface FlagStore {
  /** How flags are read: 'ioctl' (the addon) lets verify read them in its native pass instead (docs/VAULT.md#tree-check). */
  readonly kind: 'ioctl' | 'chattr';
  getFlags(path: string): Promise<number>;
  setFlag(path: string, flag: number, on: boolean): Promise<void>;
  /** setFlag over many paths in order; stops at the first failure. Returns how many were processed. */
  setFlagMany?(paths: string[], flag: number, on: boolean): Promise<number>;
  /** Flags of each path in order; throws on the first path it cannot read. */
  getFlagsMany?(paths: string[]): Promise<number[]>;
  /** Whether each path is +i; the cheapest read the store has (statx for ioctl). Throws like getFlagsMany. */
  getImmutableMany?(paths: string[]): Promise<boolean[]>;
}

// The message for an errno from either store, in the words of what was being done.
export function errnoMessage(errno: string, action: string): string {
  switch (codeForErrno(errno, 'inode-flags')) {
    case 'not-permitted':
      return `not permitted to ${action} (${errno}; needs root with CAP_LINUX_IMMUTABLE)`;
    case 'no-immutable-support':
      return `the filesystem does not support the immutable flag (${errno})`;
    case 'not-found':
      return `no such file or directory (${errno})`;
    case 'bad-path':
      return `a symlink carries no inode flags (${errno})`;
    default:
      return `could not ${action} (${errno})`;
  }
}

// Converts an addon / node:fs system error into a SentinelError whose `where` is the path.
export function flagError(e: unknown, path: string, action: string): SentinelError {
  if (e instanceof SentinelError) return e;
  if (isSystemError(e)) {
    const where = typeof e.path === 'string' && e.path !== '' ? e.path : path;
    return new SentinelError(codeForErrno(e.code, 'inode-flags'), errnoMessage(e.code, action), { where, cause: e });
  }
  return new SentinelError('internal', `unexpected failure to ${action}`, { where: path, cause: e });
}

// What setting or clearing `flag` is called in an error message.
export function actionOf(flag: number, on: boolean): string {
  return `${on ? 'set' : 'clear'} inode flag 0x${flag.toString(16)}`;
}
