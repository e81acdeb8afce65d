// /proc readings the daemon benchmarks take of a process: resident memory and CPU time, and the
// processes it started.
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
export const CLK_TCK = 100;

// VmRSS (kB) from /proc/PID/status and utime + stime (ticks) from /proc/PID/stat.
export function procSample(pid: number): { rssKB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const rssKB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKB, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

// The direct children of a process, from every thread's /proc/PID/task/TID/children.
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${String(pid)}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${String(pid)}/task/${task}/children`, 'utf8').trim().split(/\s+/)) if (c !== '') out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}
