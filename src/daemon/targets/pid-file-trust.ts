// Whose PID a `pidFile` target's file may name (docs/EBPF.md#pid-file-targets): the PID adopted is the one
// root later SIGKILLs when the target hangs or is given up, so, like systemd's PIDFile=, a pid file
// is believed only as far as whoever could have written it. The file is read O_NOFOLLOW and fstat-checked
// (src/adapters/proc.ts); the directories above its own directory must be root's (else whoever owns one
// could point the path at another file); a file not owned by root names only a process running wholly as
// its owner (/proc/PID/status Uid: real, effective, saved and filesystem uid); PID 1 and the sentinel's own
// PID are never adopted. A refusal is a `not-permitted` error saying why, naming the file.
import { dirname } from 'node:path';
import { SentinelError } from '../../core/errors.js';
import { procIdentity, readPidFileOwned, readProcUids, type ProcIdentity } from '../../adapters/proc.js';
import { unsafeAncestors } from '../../vault/safety.js';

/** Why `pid` may never be adopted whoever wrote the file, or null. */
function forbiddenPid(pid: number): string | null {
  if (pid === 1) return 'names PID 1 (init), which is never adopted';
  if (pid === process.pid) return `names the sentinel's own PID ${String(pid)}, which is never adopted`;
  return null;
}

/**
 * The PID a pid file names and, once it may be adopted, its live process; `identity` null when it is not
 * running (or exited while it was checked). Throws `not-permitted` with the reason for a PID it must not adopt.
 */
export async function readTrustedPid(path: string): Promise<{ pid: number; identity: ProcIdentity | null }> {
  const unsafe = unsafeAncestors(dirname(path))[0];
  if (unsafe !== undefined) {
    throw new SentinelError('not-permitted', `pid file refused: a directory above it is not root's own (${unsafe.path} ${unsafe.message})`, { where: path });
  }
  const { pid, uid } = await readPidFileOwned(path);
  const forbidden = forbiddenPid(pid);
  if (forbidden !== null) throw new SentinelError('not-permitted', `pid file refused: it ${forbidden}`, { where: path });
  const before = await procIdentity(pid);
  // Root's file (or the sentinel's own user's, when it does not run as root) names any process but the two above.
  if (before === null || uid === 0 || uid === process.geteuid?.()) return { pid, identity: before };
  const uids = await readProcUids(pid);
  // The uids must be those of the process identified before (not of a process that took its PID since).
  const after = await procIdentity(pid);
  if (uids === null || after === null || after.startTicks !== before.startTicks) return { pid, identity: null };
  if (uids.some((u) => u !== uid)) {
    throw new SentinelError('not-permitted', `pid file refused: it is owned by uid ${String(uid)} (not root), but PID ${String(pid)} runs as uid ${uids.join('/')} (real/effective/saved/fs); a pid file not owned by root may only name its owner's processes`, { where: path });
  }
  return { pid, identity: before };
}
