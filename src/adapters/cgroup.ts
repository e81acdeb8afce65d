// cgroupfs adapter: which hierarchy this host has, where a process lives, create/adopt a cgroup,
// move processes, write controller files with read-back, and check memory protection up the tree.
import { mkdir, readFile, readlink, rmdir, stat, writeFile } from 'node:fs/promises';
import { join, dirname, relative } from 'node:path';
import { SentinelError, messageOf } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';

/** The kernel stores memory.low/min/limit in whole pages of this size (x86-64, arm64 4K). */
export const PAGE_SIZE = 4096;

/** One line of /proc/PID/mountinfo, the fields this adapter needs. */
export interface MountEntry {
  mountPoint: string;
  root: string;
  fsType: string;
  mountOptions: string[];
  superOptions: string[];
}

/** The cgroup hierarchy of this host. */
export interface CgroupLayout {
  /** unified: only cgroup2; hybrid: cgroup2 beside v1 controllers; legacy: v1 only; none: no cgroupfs. */
  kind: 'unified' | 'hybrid' | 'legacy' | 'none';
  /** The cgroup2 mount, or null when there is none. */
  v2: { mount: string; options: string[]; recursiveProt: boolean } | null;
  /** v1 controller (or name=X) → mount point. */
  v1: Record<string, string>;
  /** The kernel knows cgroup2 (from /proc/filesystems), mounted or not. */
  kernelHasCgroup2: boolean;
}

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

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

// mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    if (l.length < 6 || r.length < 3) continue;
    entries.push({
      root: unescapeMount(l[3]!),
      mountPoint: unescapeMount(l[4]!),
      mountOptions: l[5]!.split(','),
      fsType: r[0]!,
      superOptions: r[2]!.split(','),
    });
  }
  return entries;
}

// Decide unified / hybrid / legacy from the mounts (systemd's own distinction).
export function layoutFromMounts(mounts: MountEntry[], filesystems: string): CgroupLayout {
  const v2m = mounts.find((m) => m.fsType === 'cgroup2');
  const v1: Record<string, string> = {};
  for (const m of mounts) {
    if (m.fsType !== 'cgroup') continue;
    for (const opt of m.superOptions) {
      if (['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec', 'clone_children', 'noprefix', 'xattr'].includes(opt)) continue;
      if (opt.startsWith('release_agent=')) continue;
      v1[opt] ??= m.mountPoint;
    }
  }
  const v1Controllers = Object.keys(v1).filter((k) => !k.startsWith('name='));
  const kernelHasCgroup2 = /\bcgroup2\b/.test(filesystems);
  const v2 = v2m === undefined ? null : { mount: v2m.mountPoint, options: v2m.superOptions, recursiveProt: v2m.superOptions.includes('memory_recursiveprot') };
  let kind: CgroupLayout['kind'];
  if (v2 !== null && v1Controllers.length === 0) kind = 'unified';
  else if (v2 !== null) kind = 'hybrid';
  else if (Object.keys(v1).length > 0) kind = 'legacy';
  else kind = 'none';
  return { kind, v2, v1, kernelHasCgroup2 };
}

// Read this host's layout from /proc/self/mountinfo and /proc/filesystems.
export async function detectCgroupLayout(paths: { mountinfo?: string; filesystems?: string } = {}): Promise<CgroupLayout> {
  const mountinfo = await readFile(paths.mountinfo ?? '/proc/self/mountinfo', 'utf8');
  const filesystems = await readFile(paths.filesystems ?? '/proc/filesystems', 'utf8').catch(() => '');
  return layoutFromMounts(parseMountInfo(mountinfo), filesystems);
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

// Under systemd the slice is a unit: the sentinel works with it, it does not manage cgroups beside it.
export async function isSystemdInit(): Promise<boolean> {
  try {
    const exe = await readlink('/proc/1/exe');
    if (/\/systemd$/.test(exe)) return true;
  } catch {
    // unreadable /proc/1/exe: fall back to the comm name and the runtime directory
  }
  const comm = (await readFile('/proc/1/comm', 'utf8').catch(() => '')).trim();
  if (comm !== 'systemd') return false;
  return stat('/run/systemd/system').then(
    (s) => s.isDirectory(),
    () => false,
  );
}

// systemd nests dashed slices: "omnimind-ai.slice" lives in "omnimind.slice/omnimind-ai.slice".
export function systemdSliceCgroupPath(slice: string): string {
  const base = slice.replace(/\.slice$/, '');
  if (base === '-' || base === '') return '';
  const parts = base.split('-');
  const dirs: string[] = [];
  for (let i = 1; i <= parts.length; i++) dirs.push(`${parts.slice(0, i).join('-')}.slice`);
  return dirs.join('/');
}
