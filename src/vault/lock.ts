// The vault lock (docs/VAULT.md#locking): a kernel lock (flock) on `staging/.lock`, a file that is
// created once and never unlinked. Writers (deploy, heal, rollback, recover) hold it exclusively,
// verify shared; the kernel drops it when its holder dies, so there is no stale lock to guess about.
// The file's content only says whether the last exclusive holder finished: a holder writes its pid
// after locking and truncates the file before unlocking, so content found by the next holder means
// the previous one crashed in the middle of an operation and recovery must re-apply the flags.
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { fileLocker } from '../adapters/file-lock.js';
import type { FileLocker, LockMode } from '../adapters/file-lock.js';

export interface VaultLock {
  readonly path: string;
  readonly mode: LockMode;
  /** True when the previous exclusive holder died in the middle of an operation (a crash to recover from). */
  readonly staleTakeover: boolean;
  /** Whether the crash marker was found: `staleTakeover` for an exclusive holder; a shared one sees it the same way (no live exclusive holder can be beside it). */
  readonly interrupted: boolean;
  /**
   * Unlocks. `keepMarker` (an exclusive holder that found a crash marker and only looked): the marker
   * found is written back instead of emptied, so the next write operation still recovers.
   */
  release(opts?: { keepMarker?: boolean }): Promise<void>;
}

export interface LockOptions {
  timeoutMs: number;
  /** Verify reads under a shared lock; everything that writes takes it exclusively (the default). */
  shared?: boolean;
  /** The lock implementation (tests compare the native one with flock(1)). */
  locker?: FileLocker;
}

// Why: a user other than root meets the lock first (staging/ and the lock are root's own), and
// "EACCES" alone does not tell them that the vault's commands are root's.
function notRoot(err: SentinelError, e: unknown): SentinelError {
  const euid = process.geteuid?.() ?? 0;
  const errno = errnoOf(e);
  if (euid === 0 || (errno !== 'EACCES' && errno !== 'EPERM')) return err;
  return new SentinelError(err.code, `${err.message}: run this command as root (the vault's files are root's own; this is uid ${euid})`, { where: err.where, cause: e });
}

/**
 * The lock file: a regular file of ours with one name; anything else there is refused, never used.
 * A shared holder only reads it, so it opens it read-only (a read-only mount, a full disk), and makes
 * it only when it is missing; flock(2) does not care how the file was opened.
 */
function openLockFile(path: string, readOnly = false): number {
  let fd: number;
  try {
    fd = openSync(path, (readOnly ? constants.O_RDONLY : constants.O_RDWR | constants.O_CREAT) | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (e) {
    if (errnoOf(e) === 'ELOOP') throw new SentinelError('tampered', 'the vault lock is a symlink', { where: path, cause: e });
    if (readOnly && errnoOf(e) === 'ENOENT') return openLockFile(path, false);
    throw notRoot(ioError(e, 'cannot open the vault lock', path), e);
  }
  const st = fstatSync(fd);
  const euid = process.geteuid?.() ?? 0;
  if (!st.isFile() || st.nlink !== 1 || st.uid !== euid) {
    closeSync(fd);
    throw new SentinelError('tampered', `the vault lock is not a regular file of uid ${euid} with one link (uid ${st.uid}, ${st.nlink} links)`, { where: path });
  }
  return fd;
}

/** What verify and status say of a crash marker: a benign crash reads alarming, so it says what to run. */
export const INTERRUPTED =
  'an interrupted vault operation was not recovered (a deploy, heal or rollback killed mid-way left its crash marker, or someone wrote one): a check re-seals nothing, so what it left unsealed is named here; run `sentinel vault recover` to finish or undo it';

/** Errno values of a filesystem that takes no write now: the lock cannot be taken exclusively there. */
const UNWRITABLE = new Set(['EROFS', 'ENOSPC', 'EDQUOT']);

// Why: openVault's look for a crash to recover needs the lock exclusively, which a read-only or full
// filesystem refuses; nothing could be recovered there anyway, so the commands that only look go on.
export function isUnwritableLock(e: unknown): boolean {
  const errno = errnoOf(e instanceof SentinelError ? e.cause : e);
  return errno !== undefined && UNWRITABLE.has(errno);
}

/** The lock file's first 4 KiB: a marker is a pid and a newline. */
function bytesOf(fd: number): Buffer {
  const buf = Buffer.alloc(4096);
  return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
}

function contentOf(fd: number): string {
  return bytesOf(fd).toString('utf8');
}

// Why: one operation at a time per vault, across processes (CLI and daemon), dying with its holder.
export async function acquireLock(path: string, opts: LockOptions = { timeoutMs: 0 }): Promise<VaultLock> {
  const mode: LockMode = opts.shared === true ? 'shared' : 'exclusive';
  const fd = openLockFile(path, mode === 'shared');
  let staleTakeover = false;
  let interrupted = false;
  let found: Buffer = Buffer.alloc(0);
  try {
    if (!(await (opts.locker ?? fileLocker()).lock(fd, mode, opts.timeoutMs))) {
      throw new SentinelError('busy', `another operation holds the vault lock${mode === 'shared' ? ' exclusively' : ''}`, { where: path });
    }
    found = bytesOf(fd);
    interrupted = found.toString('utf8').trim() !== '';
    if (mode === 'exclusive') {
      staleTakeover = interrupted;
      // Written over the old content, then cut to length: a write that fails (a full disk) leaves a
      // crashed holder's pid in place for the next holder, where a truncate first would have lost it.
      const mark = `${process.pid}\n`;
      writeSync(fd, mark, 0);
      ftruncateSync(fd, Buffer.byteLength(mark));
    }
  } catch (e) {
    closeSync(fd);
    throw e instanceof SentinelError ? e : ioError(e, 'cannot take the vault lock', path);
  }
  let released = false;
  return {
    path,
    mode,
    staleTakeover,
    interrupted,
    release: (how = {}) => {
      if (released) return Promise.resolve();
      released = true;
      try {
        // Empty again before the kernel lock goes: the next holder knows this operation finished. A holder
        // that only looked at a crash puts the marker back (over our pid, then cut to its length: if the
        // write fails, our pid stays, still a marker).
        if (mode === 'exclusive' && how.keepMarker === true && staleTakeover) {
          try {
            writeSync(fd, found, 0);
            ftruncateSync(fd, found.length);
          } catch {
            // Our pid, written when the lock was taken, stays there: still a marker.
          }
        } else if (mode === 'exclusive') ftruncateSync(fd, 0);
      } finally {
        closeSync(fd);
      }
      return Promise.resolve();
    },
  };
}

// Why: a look (`vault status`) says whether an operation was left interrupted, without waiting and
// without taking the lock for writing: a shared lock tried once; one refused means an operation is
// running now, which is not a crash.
export async function crashMarkerFound(path: string): Promise<boolean> {
  let lock: VaultLock;
  try {
    lock = await acquireLock(path, { timeoutMs: 0, shared: true });
  } catch (e) {
    if (e instanceof SentinelError && e.code === 'busy') return false;
    throw e;
  }
  await lock.release();
  return lock.interrupted;
}

// Why: the CLI starts verify's tree reading before the rest of the program is loaded
// (src/cli/early-verify.ts); that reading must be as well placed as verify's own, under a shared
// lock. Taken now or not at all, and only while no operation is in progress or was left
// interrupted (the lock file is empty); null then, or on any failure (the normal path reports it).
export function holdSharedIfIdle(path: string, flock: (fd: number, op: number) => boolean): { release: () => void } | null {
  let fd: number;
  try {
    fd = openLockFile(path, true);
  } catch {
    return null;
  }
  try {
    // 1 = LOCK_SH (tried with LOCK_NB by the addon).
    if (flock(fd, 1) && contentOf(fd) === '') {
      let held = true;
      return {
        release: () => {
          if (held) closeSync(fd);
          held = false;
        },
      };
    }
  } catch {
    // Not held: fall through.
  }
  closeSync(fd);
  return null;
}
