// /proc per-process adapter for OOM protection: oom_score_adj with read-back, and the capability that
// decides whether a negative score is allowed. The process table lives in proc.ts.
import { readFile, writeFile } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { codeForErrno, errnoOf, ioError } from '../core/errno.js';

/** The kernel's range of oom_score_adj: -1000 exempts a process from the OOM killer. */
export const OOM_SCORE_ADJ_MIN = -1000;
/** 1000 makes a process the OOM killer's first choice. */
export const OOM_SCORE_ADJ_MAX = 1000;
/** Bit of CAP_SYS_RESOURCE in /proc/PID/status Cap* masks (linux/capability.h). */
export const CAP_SYS_RESOURCE = 24;

// A vanished process is an everyday event for a scanner, not an I/O failure.
function goneOrIo(e: unknown, pid: number, what: string): SentinelError {
  const gone = codeForErrno(errnoOf(e), 'kernel-interface') === 'not-found';
  return ioError(e, gone ? `process ${pid} is gone` : `cannot read ${what} of process ${pid}`, `/proc/${pid}/${what}`, 'kernel-interface');
}

// Read where the OOM killer ranks a process before any write, and to verify every write.
export async function readOomScoreAdj(pid: number): Promise<number> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/oom_score_adj`, 'utf8');
  } catch (e) {
    throw goneOrIo(e, pid, 'oom_score_adj');
  }
  const value = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(value)) throw new SentinelError('io', `unreadable oom_score_adj "${text.trim()}"`, { where: `/proc/${pid}/oom_score_adj` });
  return value;
}

// Which capabilities a process holds (effective set); used to explain a refused negative score.
export async function hasCapability(cap: number, pid: number | 'self' = 'self'): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (m === null || m[1] === undefined) return false;
  return (BigInt(`0x${m[1]}`) >> BigInt(cap)) & 1n ? true : false;
}

// Set a score and prove it took: the value is read back; EACCES on a negative score names the missing capability.
export async function writeOomScoreAdj(pid: number, value: number): Promise<number> {
  if (!Number.isInteger(value) || value < OOM_SCORE_ADJ_MIN || value > OOM_SCORE_ADJ_MAX) {
    throw new SentinelError('usage', `oom_score_adj must be an integer in -1000..1000, got ${value}`, { where: 'oomScoreAdj' });
  }
  const where = `/proc/${pid}/oom_score_adj`;
  try {
    await writeFile(where, `${value}\n`, { flag: 'r+' });
  } catch (e) {
    const code = errnoOf(e);
    if (codeForErrno(code, 'kernel-interface') === 'not-permitted') {
      const capable = await hasCapability(CAP_SYS_RESOURCE).catch(() => false);
      const why = capable
        ? `the kernel refused it (${code}) although this process has CAP_SYS_RESOURCE`
        : `no CAP_SYS_RESOURCE (lowering a score below the process's minimum needs it; ${code})`;
      throw new SentinelError('not-permitted', `oom_score_adj=${value} for process ${pid} refused: ${why}`, { where, cause: e });
    }
    const gone = codeForErrno(code, 'kernel-interface') === 'not-found';
    throw ioError(e, gone ? `process ${pid} is gone` : `cannot write oom_score_adj=${value} for process ${pid}`, where, 'kernel-interface');
  }
  const back = await readOomScoreAdj(pid);
  if (back !== value) throw new SentinelError('internal', `oom_score_adj of process ${pid} reads ${back} after writing ${value}`, { where });
  return back;
}
