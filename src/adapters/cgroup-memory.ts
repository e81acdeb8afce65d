// The memory controller's files: memory.low/min protection (v2) with the ancestors that would cap
// it, and the v1 limit and OOM counters, each written with read-back through cgroup.ts.
import { dirname, join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { readCgroupFile, writeCgroupFile } from './cgroup.js';

/** The kernel stores memory.low/min/limit in whole pages of this size (x86-64, arm64 4K). */
export const PAGE_SIZE = 4096;

// Set memory.low / memory.min in bytes and verify; the kernel stores whole pages.
export async function writeMemoryProtection(dir: string, file: 'memory.low' | 'memory.min', bytes: number): Promise<number> {
  const back = await writeCgroupFile(dir, file, String(bytes));
  const value = back === 'max' ? Number.MAX_SAFE_INTEGER : Number(back);
  const expected = Math.floor(bytes / PAGE_SIZE) * PAGE_SIZE;
  if (value !== bytes && value !== expected) {
    throw new SentinelError('internal', `${file} reads ${back} after writing ${bytes}`, { where: join(dir, file) });
  }
  return value;
}

/** An ancestor whose own memory.low/min is 0 and so caps its children's protection. */
export interface UnprotectedAncestor {
  dir: string;
  value: string;
}

// memory.low/min only protects if every ancestor below the root grants it too, unless memory_recursiveprot.
export async function unprotectedAncestors(mount: string, dir: string, file: 'memory.low' | 'memory.min'): Promise<UnprotectedAncestor[]> {
  const out: UnprotectedAncestor[] = [];
  let cur = dirname(dir);
  while (cur !== mount && cur.startsWith(`${mount}/`)) {
    const value = await readCgroupFile(cur, file).catch(() => 'missing');
    if (value === 'missing' || value === '0') out.push({ dir: cur, value });
    cur = dirname(cur);
  }
  return out;
}

/** The v1 memory controller's OOM counters (memory.oom_control, memory.failcnt). */
export interface V1OomState {
  oomKillDisable: boolean;
  underOom: boolean;
  oomKill: number;
  failcnt: number;
}

// Read what the v1 memory controller saw: limit hits and OOM kills inside the cgroup.
export async function readV1OomState(dir: string): Promise<V1OomState> {
  const text = await readCgroupFile(dir, 'memory.oom_control');
  const field = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    oomKillDisable: field('oom_kill_disable') === 1,
    underOom: field('under_oom') === 1,
    oomKill: field('oom_kill'),
    failcnt: Number(await readCgroupFile(dir, 'memory.failcnt')),
  };
}

// Set a v1 memory limit and verify (the kernel rounds to pages).
export async function writeV1MemoryLimit(dir: string, bytes: number): Promise<number> {
  const back = Number(await writeCgroupFile(dir, 'memory.limit_in_bytes', String(bytes)));
  if (back !== Math.floor(bytes / PAGE_SIZE) * PAGE_SIZE) {
    throw new SentinelError('internal', `memory.limit_in_bytes reads ${back} after writing ${bytes}`, { where: join(dir, 'memory.limit_in_bytes') });
  }
  return back;
}
