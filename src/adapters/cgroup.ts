// cgroupfs adapter: where a process lives (/proc/PID/cgroup), create/adopt and remove a cgroup,
// move processes, and read and write control files with read-back. The host's hierarchy is in
// cgroup-layout.ts, the memory controller's files in cgroup-memory.ts.
import { mkdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { SentinelError, messageOf } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';

// One place that turns cgroupfs errno values into the product's error codes, with the exact file.
function cgroupError(e: unknown, action: string, where: string): SentinelError {
  const errno = errnoOf(e);
  const code = codeForErrno(errno, 'kernel-interface');
  const why =
    errno === 'EROFS' ? 'cgroupfs is read-only here (EROFS; a container?)'
    : errno === 'ESRCH' ? 'no such process (ESRCH)'
    : code === 'unavailable' ? `the kernel does not support it here (${errno ?? ''})`
    : (errno ?? messageOf(e));
  return new SentinelError(code, `${action}: ${why}`, { where, cause: e });
}

/** One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH" (ID 0 and no controllers for cgroup2). */
export interface ProcCgroupEntry {
  hierarchyId: number;
  controllers: string[];
  path: string;
}

// Parse /proc/PID/cgroup; a cgroup path may itself contain ':' so only the first two are split.
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const out: ProcCgroupEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    out.push({ hierarchyId: Number(m[1]), controllers: m[2] === '' ? [] : m[2]!.split(','), path: m[3]! });
  }
  return out;
}

// Where a process lives in every hierarchy.
export async function readProcCgroup(pid: number): Promise<ProcCgroupEntry[]> {
  const where = `/proc/${pid}/cgroup`;
  try {
    return parseProcCgroup(await readFile(where, 'utf8'));
  } catch (e) {
    throw cgroupError(e, `cannot read the cgroup of process ${pid}`, where);
  }
}

// The cgroup2 path of a process relative to the v2 mount ("/omnimind.slice"), or null without v2.
export async function v2PathOf(pid: number): Promise<string | null> {
  const entry = (await readProcCgroup(pid)).find((e) => e.hierarchyId === 0 && e.controllers.length === 0);
  return entry === undefined ? null : entry.path;
}

// The v1 path of a process in the hierarchy of one controller ("memory"), or null.
export async function v1PathOf(pid: number, controller: string): Promise<string | null> {
  const entry = (await readProcCgroup(pid)).find((e) => e.hierarchyId !== 0 && e.controllers.includes(controller));
  return entry === undefined ? null : entry.path;
}

// Translate an absolute cgroup directory into the path /proc/PID/cgroup shows for it.
export function cgroupPathIn(mount: string, dir: string): string {
  const rel = relative(mount, dir);
  if (rel.startsWith('..')) throw new SentinelError('usage', `${dir} is not under the cgroup mount ${mount}`, { where: dir });
  return rel === '' ? '/' : `/${rel}`;
}

// Create a cgroup, or adopt it when it is already there.
export async function ensureCgroup(dir: string): Promise<{ created: boolean }> {
  try {
    const s = await stat(join(dir, 'cgroup.procs'));
    if (s.isFile()) return { created: false };
  } catch {
    // not there yet: created below
  }
  let created = true;
  try {
    await mkdir(dir);
  } catch (e) {
    if (errnoOf(e) !== 'EEXIST') throw cgroupError(e, 'cannot create cgroup', dir);
    created = false;
  }
  // A plain directory is not a cgroup: cgroupfs fills a new directory with its control files.
  const isCgroup = await stat(join(dir, 'cgroup.procs')).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isCgroup) {
    if (created) await rmdir(dir).catch(() => undefined);
    throw new SentinelError('unavailable', 'not a cgroup: the directory has no cgroup.procs (not on a cgroup filesystem)', { where: dir });
  }
  return { created };
}

// Remove an empty cgroup (tests and teardown); a missing one is already removed.
export async function removeCgroup(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return;
    throw cgroupError(e, 'cannot remove cgroup', dir);
  }
}

// The processes (thread-group ids) in one cgroup.
export async function readCgroupProcs(dir: string): Promise<number[]> {
  const where = join(dir, 'cgroup.procs');
  try {
    const text = await readFile(where, 'utf8');
    return text.split('\n').filter((l) => l !== '').map(Number);
  } catch (e) {
    throw cgroupError(e, 'cannot list processes of cgroup', where);
  }
}

// Move a whole process (all threads) into a cgroup, then read back that it is listed there.
export async function moveProcess(dir: string, pid: number): Promise<void> {
  const where = join(dir, 'cgroup.procs');
  try {
    await writeFile(where, `${pid}\n`, { flag: 'r+' });
  } catch (e) {
    if (errnoOf(e) === 'EBUSY') {
      throw new SentinelError('io', `cannot move process ${pid}: the cgroup has controllers enabled for children (EBUSY, no internal processes)`, { where, cause: e });
    }
    throw cgroupError(e, `cannot move process ${pid}`, where);
  }
  const procs = await readCgroupProcs(dir);
  if (!procs.includes(pid)) {
    throw new SentinelError('internal', `process ${pid} is not listed in ${where} after moving it`, { where });
  }
}

// Read one control file of a cgroup, trimmed.
export async function readCgroupFile(dir: string, file: string): Promise<string> {
  const where = join(dir, file);
  try {
    return (await readFile(where, 'utf8')).trim();
  } catch (e) {
    throw cgroupError(e, `cannot read ${file}`, where);
  }
}

// Write one control file and return what the kernel reads back (callers compare).
export async function writeCgroupFile(dir: string, file: string, value: string): Promise<string> {
  const where = join(dir, file);
  try {
    await writeFile(where, `${value}\n`, { flag: 'r+' });
  } catch (e) {
    throw cgroupError(e, `cannot write ${file}=${value}`, where);
  }
  return readCgroupFile(dir, file);
}

// v2 controllers available to a cgroup's children ("cgroup.controllers" of the cgroup itself).
export async function availableControllers(dir: string): Promise<string[]> {
  const text = await readCgroupFile(dir, 'cgroup.controllers');
  return text === '' ? [] : text.split(/\s+/);
}

// Enable a v2 controller for the children of `dir` (cgroup.subtree_control), verified by read-back.
export async function enableSubtreeController(dir: string, controller: string): Promise<void> {
  const current = (await readCgroupFile(dir, 'cgroup.subtree_control')).split(/\s+/);
  if (current.includes(controller)) return;
  const back = (await writeCgroupFile(dir, 'cgroup.subtree_control', `+${controller}`)).split(/\s+/);
  if (!back.includes(controller)) {
    throw new SentinelError('internal', `controller ${controller} not enabled after writing +${controller}`, { where: join(dir, 'cgroup.subtree_control') });
  }
}
