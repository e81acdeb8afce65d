// Whose PID a `pidFile` target's file may name (docs/EBPF.md#pid-file-targets): the PID adopted is the one
// root later SIGKILLs when the target hangs or is given up, so, like systemd's PIDFile=, a pid file
// is believed only as far as whoever could have written it. The file is read O_NOFOLLOW and fstat-checked
// (src/adapters/proc.ts; one link only); the directories above its own directory must be root's (else
// whoever owns one could point the path at another file); a file not owned by root, or in a directory a
// user owns, names only a process running wholly as that user (/proc/PID/status Uid: real, effective,
// saved and filesystem uid); PID 1 and the sentinel's own PID are never adopted. A refusal is a `not-permitted` error saying why, naming the file.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { SentinelError } from '../../core/errors.js';
import { ioError } from '../../core/errno.js';
import { procIdentity, readPidFileOwned, readProcUids, type ProcIdentity } from '../../adapters/proc.js';
import { trustedOwner, unsafeAncestors } from '../../vault/safety.js';

/** Why `pid` may never be adopted whoever wrote the file, or null. */
function forbiddenPid(pid: number): string | null {
  if (pid === 1) return 'names PID 1 (init), which is never adopted';
  if (pid === process.pid) return `names the sentinel's own PID ${String(pid)}, which is never adopted`;
  return null;
}

/**
 * Who could have put the file there: null when only root (or the sentinel's user) could; else the one
 * user whose processes it may name. A root-owned file in a directory a user owns is theirs too (they
 * can rename or link root's files into place); a directory writable by group or others without the
 * sticky bit has no single writer, so a file there is refused.
 */
function writerOf(path: string, fileUid: number, dir: Stats): { uid: number | null; why: string } {
  if (!trustedOwner(fileUid)) return { uid: fileUid, why: `it is owned by uid ${String(fileUid)} (not root)` };
  if (!trustedOwner(dir.uid)) return { uid: dir.uid, why: `its directory is owned by uid ${String(dir.uid)} (not root)` };
  if ((dir.mode & 0o022) !== 0 && (dir.mode & 0o1000) === 0) {
    throw new SentinelError('not-permitted', `pid file refused: its directory (mode ${(dir.mode & 0o7777).toString(8).padStart(4, '0')}) is writable by group or others without the sticky bit, so anyone of them could have put it there`, { where: path });
  }
  return { uid: null, why: '' };
}

function refuseUnsafeAbove(dir: string, where: string): void {
  const unsafe = unsafeAncestors(dir)[0];
  if (unsafe !== undefined) {
    throw new SentinelError('not-permitted', `pid file refused: a directory above it is not root's own (${unsafe.path} ${unsafe.message})`, { where });
  }
}

/**
 * The pid file's own directory, held open: the directories above it must be root's; when it is a
 * symlink (like /var/run -> /run), every hop must be root's own symlink and the directories above each
 * hop root's too; the directory it leads to is the one judged (fstat of the descriptor) and read through.
 */
function holdDir(path: string): { fd: number; st: Stats } {
  let dir = dirname(path);
  refuseUnsafeAbove(dir, path);
  try {
    for (let hops = 0; ; hops++) {
      const l = lstatSync(dir);
      if (!l.isSymbolicLink()) break;
      if (!trustedOwner(l.uid)) throw new SentinelError('not-permitted', `pid file refused: its directory ${dir} is a symlink owned by uid ${String(l.uid)} (not root): not followed`, { where: path });
      if (hops >= 40) throw new SentinelError('not-permitted', `pid file refused: its directory ${dir} is a chain of more than 40 symlinks`, { where: path });
      dir = resolve(dirname(dir), readlinkSync(dir));
      refuseUnsafeAbove(dir, path);
    }
    // O_NOFOLLOW: had the last hop been swapped for a symlink since, the open fails instead of following it.
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      return { fd, st: fstatSync(fd) };
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  } catch (e) {
    if (e instanceof SentinelError) throw e;
    throw ioError(e, "cannot open the pid file's directory", dir);
  }
}

/**
 * The PID a pid file names and, once it may be adopted, its live process; `identity` null when it is not
 * running (or exited while it was checked). Throws `not-permitted` with the reason for a PID it must not adopt.
 */
export async function readTrustedPid(path: string): Promise<{ pid: number; identity: ProcIdentity | null }> {
  const dir = holdDir(path);
  let read;
  try {
    // The file is opened through the held directory, so the directory judged is the one it is read from.
    read = await readPidFileOwned(`/proc/self/fd/${String(dir.fd)}/${basename(path)}`, path);
  } finally {
    closeSync(dir.fd);
  }
  const { pid, uid } = read;
  const forbidden = forbiddenPid(pid);
  if (forbidden !== null) throw new SentinelError('not-permitted', `pid file refused: it ${forbidden}`, { where: path });
  const writer = writerOf(path, uid, dir.st);
  const before = await procIdentity(pid);
  // Root's file (or the sentinel's own user's, when it does not run as root) names any process but the two above.
  if (before === null || writer.uid === null) return { pid, identity: before };
  const uids = await readProcUids(pid);
  // The uids must be those of the process identified before (not of a process that took its PID since).
  const after = await procIdentity(pid);
  if (uids === null || after === null || after.startTicks !== before.startTicks) return { pid, identity: null };
  if (uids.some((u) => u !== writer.uid)) {
    throw new SentinelError('not-permitted', `pid file refused: ${writer.why}, but PID ${String(pid)} runs as uid ${uids.join('/')} (real/effective/saved/fs); a pid file others could write may only name their own processes`, { where: path });
  }
  return { pid, identity: before };
}
