// `sentinel doctor`: what this host can do for the whole mission (vault, watchdog, protection,
// eBPF), each line ok / missing / degraded with its fix; exit 0 only if the vault can work.
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { defaultFlagStore, probeImmutableSupport } from '../adapters/flags.js';
import { loadNative, nativeLoadProblem } from '../adapters/native.js';
import { aptFor, ebpfChecks } from './doctor-ebpf.js';
import { packageRoot } from '../adapters/package-root.js';
import { probeProtectionSupport } from '../daemon/protection/index.js';
import { SentinelError, isSentinelError, messageOf } from '../core/errors.js';
import { failureJson, printErrorLine } from './failure.js';
import { printJson, printLines } from './output.js';
import { paint } from './style.js';

/** ok: works; missing: absent, with a fix; degraded: works in a reduced way, with a fix. */
export type CheckStatus = 'ok' | 'missing' | 'degraded';

/** One line of the doctor's report; `vault` marks the checks the vault cannot work without. */
export interface DoctorCheck { name: string; status: CheckStatus; detail: string; fix?: string; vault: boolean }

const CAP_LINUX_IMMUTABLE = 9;
const CAP_SYS_RESOURCE = 24;

async function readOr(path: string, fallback: string): Promise<string> {
  return fs.readFile(path, 'utf8').catch(() => fallback);
}

async function onPath(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir === '') continue;
    const p = join(dir, cmd);
    const ok = await fs.access(p, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) return p;
  }
  return undefined;
}

/** Parsed /proc/self/mounts lines: type, mount point, options. */
type Mount = { type: string; at: string; options: string[] };

async function mounts(): Promise<Mount[]> {
  const text = await readOr('/proc/self/mounts', '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [, at = '', type = '', opts = ''] = l.split(' ');
      return { type, at: at.replace(/\\040/g, ' '), options: opts.split(',') };
    });
}

function hasCap(capHex: string | undefined, bit: number): boolean {
  if (capHex === undefined) return false;
  return ((BigInt(`0x${capHex}`) >> BigInt(bit)) & 1n) === 1n;
}

async function nearestExistingDir(dir: string): Promise<string> {
  let d = dir;
  for (;;) {
    const st = await fs.stat(d).catch(() => undefined);
    if (st?.isDirectory() === true) return d;
    const up = dirname(d);
    if (up === d) return d;
    d = up;
  }
}

async function checkImmutable(vaultDir: string): Promise<DoctorCheck> {
  // A file where the vault would be (a typo): no vault can be made or opened there, whatever its filesystem.
  const own = await fs.stat(vaultDir).catch(() => undefined);
  if (own !== undefined && !own.isDirectory()) {
    return { name: 'vault filesystem supports +i', status: 'missing', detail: `${vaultDir}: not a directory: a vault is a directory`, fix: 'give --vault-dir the directory that holds (or will hold) the vault, or move the file away', vault: true };
  }
  const dir = await nearestExistingDir(vaultDir);
  try {
    await probeImmutableSupport(dir);
    return { name: 'vault filesystem supports +i', status: 'ok', detail: dir === vaultDir ? `+i can be set and cleared in ${dir}` : `+i can be set and cleared in ${dir} (nearest existing parent of ${vaultDir})`, vault: true };
  } catch (e) {
    if (isSentinelError(e, 'no-immutable-support')) {
      return { name: 'vault filesystem supports +i', status: 'missing', detail: `${dir}: ${e.message}`, fix: 'put the vault on ext4, xfs, btrfs or tmpfs (not overlayfs/NFS/vfat)', vault: true };
    }
    if (isSentinelError(e, 'not-permitted')) {
      return { name: 'vault filesystem supports +i', status: 'missing', detail: `${dir}: ${e.message}`, fix: 'run as root with CAP_LINUX_IMMUTABLE (outside a container that drops it)', vault: true };
    }
    const msg = messageOf(e);
    return { name: 'vault filesystem supports +i', status: 'missing', detail: `${dir}: ${msg}`, fix: 'check the directory exists and is writable by root', vault: true };
  }
}

// Runs every probe; none throws, each reports its own state.
export async function collectChecks(opts: { vaultDir?: string } = {}): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  checks.push(uid === 0 ? { name: 'root', status: 'ok', detail: 'running as uid 0', vault: true } : { name: 'root', status: 'missing', detail: `running as uid ${uid}`, fix: 'run sentinel as root (sudo) or as the systemd service', vault: true });

  const statusText = await readOr('/proc/self/status', '');
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(statusText)?.[1];
  const immutableCap = hasCap(capEff, CAP_LINUX_IMMUTABLE);
  checks.push(immutableCap ? { name: 'CAP_LINUX_IMMUTABLE', status: 'ok', detail: 'may set and clear +i', vault: true } : { name: 'CAP_LINUX_IMMUTABLE', status: 'missing', detail: 'cannot change the immutable flag', fix: 'grant CAP_LINUX_IMMUTABLE (AmbientCapabilities= / CapabilityBoundingSet= in the unit)', vault: true });

  const native = loadNative();
  const chattr = await onPath('chattr');
  const lsattr = await onPath('lsattr');
  const tools = chattr !== undefined && lsattr !== undefined;
  checks.push(native !== null ? { name: 'native flags addon', status: 'ok', detail: 'ioctl FS_IOC_GETFLAGS/SETFLAGS without spawning (short seal windows)', vault: false } : { name: 'native flags addon', status: 'degraded', detail: `${nativeLoadProblem() ?? 'not built'}; using chattr/lsattr (about 6 ms a call, longer deploy windows)`, fix: `${aptFor(['make', 'g++'])}cd ${packageRoot()} && npm run install`, vault: false });
  checks.push(tools ? { name: 'chattr/lsattr', status: 'ok', detail: `${chattr} and ${lsattr}`, vault: native === null } : { name: 'chattr/lsattr', status: 'missing', detail: 'not on PATH', fix: 'apt-get install e2fsprogs', vault: native === null });
  checks.push({ name: 'flag store in use', status: 'ok', detail: defaultFlagStore().kind, vault: false });

  checks.push(await checkImmutable(opts.vaultDir ?? '/var/lib/omnimind'));

  const all = await mounts();
  const v2 = all.filter((m) => m.type === 'cgroup2');
  if (v2.length === 0) {
    checks.push({ name: 'cgroup v2', status: 'missing', detail: 'no cgroup2 mount', fix: 'boot with systemd.unified_cgroup_hierarchy=1', vault: false });
  } else {
    for (const m of v2) {
      const controllers = (await readOr(join(m.at, 'cgroup.controllers'), '')).trim();
      const hasMemory = controllers.split(/\s+/).includes('memory');
      checks.push({ name: 'cgroup v2', status: hasMemory ? 'ok' : 'degraded', detail: `mounted at ${m.at}; controllers: ${controllers === '' ? '(none)' : controllers}`, ...(hasMemory ? {} : { fix: 'memory.low/min need the memory controller on v2: boot with systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=memory' }), vault: false });
    }
  }
  const v1mem = all.find((m) => m.type === 'cgroup' && m.options.includes('memory'));
  checks.push(v1mem !== undefined ? { name: 'cgroup v1 memory controller', status: 'ok', detail: `mounted at ${v1mem.at} (limits and OOM scoring only; no memory.low)`, vault: false } : { name: 'cgroup v1 memory controller', status: 'ok', detail: 'not mounted (fine on a pure v2 host)', vault: false });
  const capBnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(statusText)?.[1];
  checks.push(hasCap(capEff, CAP_SYS_RESOURCE) ? { name: 'CAP_SYS_RESOURCE', status: 'ok', detail: 'may set oom_score_adj=-1000', vault: false } : { name: 'CAP_SYS_RESOURCE', status: 'degraded', detail: hasCap(capBnd, CAP_SYS_RESOURCE) ? 'not effective' : 'not in the bounding set (a VM or container dropped it)', fix: 'run on a host (or unit) that grants CAP_SYS_RESOURCE; otherwise protection is relative only', vault: false });

  // The real BPF object, loaded and attached as this process and with the unit's capabilities.
  checks.push(...(await ebpfChecks(uid === 0)));

  // What the protection manager will be able to apply here, in its own words.
  const protection = await probeProtectionSupport();
  checks.push(protection.limits.length === 0 ? { name: 'memory/OOM protection', status: 'ok', detail: `${protection.hierarchy} hierarchy; slice, memory.low/min and oom_score_adj=-1000 all available`, vault: false } : { name: 'memory/OOM protection', status: 'degraded', detail: `${protection.hierarchy} hierarchy; ${protection.limits.join('; ')}`, fix: 'see docs/PROTECTION.md (cgroup v2 with the memory controller, CAP_SYS_RESOURCE)', vault: false });
  const pid1 = (await readOr('/proc/1/comm', '')).trim();
  checks.push(pid1 === 'systemd' ? { name: 'systemd as PID 1', status: 'ok', detail: 'Type=notify, watchdog and slices available', vault: false } : { name: 'systemd as PID 1', status: 'degraded', detail: `PID 1 is '${pid1 || 'unknown'}'; no watchdog or slice management`, fix: 'run the daemon under systemd (omnimind-sentinel.service) on the real host', vault: false });
  const notify = await onPath('systemd-notify');
  checks.push(notify !== undefined ? { name: 'systemd-notify', status: 'ok', detail: notify, vault: false } : { name: 'systemd-notify', status: native !== null ? 'ok' : 'missing', detail: native !== null ? 'absent, but the native addon sends sd_notify datagrams' : 'absent and no native addon: no way to notify systemd', ...(native !== null ? {} : { fix: 'apt-get install systemd' }), vault: false });
  return checks;
}

// Exit 0 when every check the vault needs is ok, else 2 (an environment problem).
export async function runDoctor(opts: { vaultDir?: string; json?: boolean }): Promise<number> {
  const checks = await collectChecks(opts);
  const vaultReady = checks.every((c) => !c.vault || c.status === 'ok');
  const first = checks.find((c) => c.vault && c.status !== 'ok');
  const err = first === undefined ? undefined : new SentinelError('unavailable', `${first.name} is ${first.status}${first.fix !== undefined ? `; fix: ${first.fix}` : ''}`, { where: 'doctor' });
  if (opts.json === true) {
    printJson({ ok: vaultReady, vaultReady, checks, ...(err !== undefined ? { error: failureJson(err).error } : {}) });
  } else {
    const w = Math.max(...checks.map((c) => c.name.length));
    const p = paint();
    const mark = { ok: p.green, degraded: p.yellow, missing: p.red } as const;
    printLines(
      ...checks.map((c) => `${mark[c.status](c.status.padEnd(8))} ${c.name.padEnd(w)}  ${c.detail}${c.fix !== undefined ? `\n${' '.repeat(9 + w + 2)}fix: ${c.fix}` : ''}`),
      vaultReady ? 'the vault can work on this host' : 'the vault cannot work on this host until the missing items above are fixed',
    );
  }
  if (err !== undefined) printErrorLine(err);
  return vaultReady ? 0 : 2;
}
