// doctor's eBPF checks: the real BPF object is loaded and attached (every program group) and closed
// again, once as this process and once with only the capabilities the sentinel's unit grants, so
// the report says what the daemon will get (load/attach ms, which BTF) or exactly why not. Every
// `fix` that is a command works as printed (tested).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_GROUPS, BpfEngine } from '../adapters/bpf-engine.js';
import { packageRoot } from '../adapters/package-root.js';
import { runCommand } from '../adapters/process.js';
import { messageOf } from '../core/errors.js';
import type { DoctorCheck } from './doctor.js';

/** What one load-and-attach of the object gave. */
export interface EngineProbe { ok: boolean; loadMs?: number; attachMs?: number; btf?: string; code?: string; reason?: string }

const TRACEFS = '/sys/kernel/tracing';
const UNIT = 'omnimind-sentinel.service';

// Why: the same call the daemon makes at start, so "ok" here means the daemon's engine loads too.
export function probeEngine(): EngineProbe {
  try {
    const e = BpfEngine.open({ groups: ALL_GROUPS, onRecord: () => undefined });
    const r = { ok: true, loadMs: Math.round(e.timing.loadMs * 10) / 10, attachMs: Math.round(e.timing.attachMs * 10) / 10, btf: e.btf };
    e.close();
    return r;
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code ?? 'internal', reason: messageOf(e) };
  }
}

/** Mount points of tracefs, from /proc/self/mountinfo (field 9 is the type, 5 the mount point). */
export function tracefsMounts(mountinfo = readOr('/proc/self/mountinfo')): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left = '', right = ''] = line.split(' - ');
    if (right.split(' ')[0] === 'tracefs') out.push((left.split(' ')[4] ?? '').replace(/\\040/g, ' '));
  }
  return out;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The unit the service manager would run: the installed one, else the one this package ships. */
export function sentinelUnit(root = packageRoot()): { path: string; text: string } | null {
  for (const path of [`/etc/systemd/system/${UNIT}`, `/lib/systemd/system/${UNIT}`, join(root, 'systemd', UNIT)]) {
    if (existsSync(path)) return { path, text: readOr(path) };
  }
  return null;
}

/** The unit's CapabilityBoundingSet= (null: not set, every capability) and its allowed syscalls. */
export function unitPrivileges(text: string): { caps: string[] | null; syscallsAllowed: (name: string) => boolean } {
  const values = (key: string): string[] => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => (m[1] ?? '').trim());
  const capLines = values('CapabilityBoundingSet');
  const caps = capLines.length === 0 ? null : capLines.flatMap((l) => l.split(/\s+/)).filter((c) => c !== '' && !c.startsWith('~'));
  const filters = values('SystemCallFilter');
  const allowLists = filters.filter((f) => !f.startsWith('~')).map((f) => f.split(/\s+/));
  const denied = new Set(filters.filter((f) => f.startsWith('~')).flatMap((f) => f.slice(1).split(/\s+/)));
  return { caps, syscallsAllowed: (name) => !denied.has(name) && (allowLists.length === 0 || allowLists.some((l) => l.includes(name))) };
}

// Only the packages that are missing, so the printed fix needs no package manager when none is.
export function aptFor(pkgs: string[]): string {
  const present: Record<string, () => boolean> = {
    make: () => onPath('make'),
    'g++': () => onPath('g++'),
    clang: () => onPath('clang'),
    bpftool: () => onPath('bpftool') || existsSync('/usr/sbin/bpftool'),
    'libbpf-dev': () => existsSync('/usr/include/bpf/libbpf.h'),
  };
  const missing = pkgs.filter((p) => present[p]?.() !== true);
  return missing.length === 0 ? '' : `apt-get install -y ${missing.join(' ')} && `;
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

// Why: a fix is printed only where it is the way out: a command that works as printed, else plain advice.
function fixFor(probe: EngineProbe, root: string): string {
  const reason = probe.reason ?? '';
  if (/native addon/.test(reason)) return `${aptFor(['make', 'g++', 'libbpf-dev'])}cd ${root} && npm run install`;
  if (/BPF object is not built/.test(reason)) return existsSync(join(root, 'scripts', 'build-bpf.sh')) ? `${aptFor(['clang', 'bpftool', 'libbpf-dev'])}bash ${join(root, 'scripts', 'build-bpf.sh')}` : 'install a package built on a host with clang, bpftool and libbpf-dev (it ships bpf/build/sentinel.bpf.o)';
  if (/no BTF/.test(reason)) return 'boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (in a container: bind /sys/kernel/btf in read-only)';
  if (tracefsMounts().length === 0 && existsSync(TRACEFS)) return `mount -t tracefs tracefs ${TRACEFS}`;
  if (probe.code === 'not-permitted') return 'run as root with CAP_BPF and CAP_PERFMON (in a container: allow the bpf and perf_event_open syscalls too)';
  return 'see docs/EBPF.md#fallback-degraded; the daemon polls /proc meanwhile';
}

// Why: run under setpriv with the unit's capability bounding set, the probe meets the same refusals the service would.
async function probeAsUnit(caps: string[] | null): Promise<EngineProbe | string> {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const cli = process.argv[1];
  if (setpriv === undefined) return 'setpriv (util-linux) is not installed';
  if (cli === undefined) return 'the sentinel CLI path is unknown';
  const bounding = caps === null ? [] : ['--bounding-set', ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/i, '').toLowerCase()}`)].join(',')];
  const r = await runCommand([setpriv, ...bounding, '--inh-caps', '-all', process.execPath, cli, 'doctor', '--engine-probe'], { timeoutMs: 20_000 });
  try {
    return JSON.parse(r.stdout) as EngineProbe;
  } catch {
    return `the probe under the unit's capabilities did not answer (${r.message || r.stderr.trim()})`;
  }
}

const describe = (p: EngineProbe): string => `loads and attaches (${ALL_GROUPS.join(', ')}): load ${String(p.loadMs)} ms, attach ${String(p.attachMs)} ms, ${p.btf ?? ''}`;

export async function ebpfChecks(asRoot: boolean): Promise<DoctorCheck[]> {
  const root = packageRoot();
  const checks: DoctorCheck[] = [];
  const mounted = tracefsMounts();
  checks.push(mounted.length > 0 ? { name: 'tracefs', status: 'ok', detail: `mounted at ${mounted.join(', ')}`, vault: false } : { name: 'tracefs', status: 'missing', detail: 'not mounted; tracepoints cannot attach', fix: existsSync(TRACEFS) ? `mount -t tracefs tracefs ${TRACEFS}` : 'boot a kernel with tracefs (CONFIG_FTRACE)', vault: false });
  const here = probeEngine();
  const fallback = 'the daemon polls /proc instead (about 10 ms) and says so in status';
  checks.push(here.ok ? { name: 'eBPF engine', status: 'ok', detail: describe(here), vault: false } : { name: 'eBPF engine', status: 'degraded', detail: `${here.reason ?? ''}; ${fallback}`, fix: fixFor(here, root), vault: false });
  const unit = sentinelUnit(root);
  if (unit === null) return checks;
  const priv = unitPrivileges(unit.text);
  const blocked = ['bpf', 'perf_event_open'].filter((s) => !priv.syscallsAllowed(s));
  const lacking = priv.caps === null ? [] : ['CAP_BPF', 'CAP_PERFMON'].filter((c) => !priv.caps?.includes(c));
  const name = 'eBPF engine under the unit';
  if (blocked.length > 0 || lacking.length > 0) {
    checks.push({ name, status: 'degraded', detail: `${unit.path} ${[...lacking.map((c) => `does not grant ${c}`), ...blocked.map((s) => `filters the ${s} syscall`)].join(', ')}; ${fallback}`, fix: `add ${[...lacking, ...blocked].join(' ')} to CapabilityBoundingSet=/SystemCallFilter= in a drop-in (systemctl edit ${UNIT})`, vault: false });
  } else if (!here.ok || !asRoot) {
    checks.push({ name, status: 'degraded', detail: `not probed: ${here.ok ? 'doctor does not run as root' : 'the engine does not load here at all'}`, fix: here.ok ? 'run sentinel doctor as root' : fixFor(here, root), vault: false });
  } else {
    const p = await probeAsUnit(priv.caps);
    if (typeof p === 'string') checks.push({ name, status: 'degraded', detail: `not probed: ${p}`, fix: 'apt-get install -y util-linux', vault: false });
    else checks.push(p.ok ? { name, status: 'ok', detail: `with the capabilities of ${unit.path}, ${describe(p)}`, vault: false } : { name, status: 'degraded', detail: `with the capabilities of ${unit.path}: ${p.reason ?? ''}; ${fallback}`, fix: fixFor(p, root), vault: false });
  }
  return checks;
}
