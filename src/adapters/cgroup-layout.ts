// Which cgroup hierarchy this host has (unified, hybrid, legacy or none, from /proc/self/mountinfo
// and /proc/filesystems), and whether systemd is init and so owns the slices.
import { readFile, readlink, stat } from 'node:fs/promises';

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
