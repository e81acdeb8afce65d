// Boots a real systemd as PID 1 in systemd-nspawn over the host's own / (volatile, so nothing the
// container writes survives), for the tests that must prove a unit the way it ships. Each boot runs
// inside a unique cgroup of its own, so two containers never share nspawn's payload/supervisor
// cgroups, and that subtree is removed afterwards, deepest first.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { isRoot, needs } from './env.js';

export interface BootOptions {
  /** Extra systemd-nspawn arguments: `--bind-ro=HOST:GUEST`, `--capability=…`, `--system-call-filter=…`. */
  args: string[];
  /** Units pulled into the boot (`systemd.wants=UNIT` on the kernel command line). */
  wants: string[];
  /** The container must power itself off (a reporter unit calls `systemctl poweroff`) within this time. */
  timeoutMs: number;
  /** Share the host's network instead of `--private-network` (default false). */
  hostNetwork?: boolean;
  /**
   * Host directories the container sees writable through an overlay whose changes are thrown away
   * (`--overlay=DIR::DIR`): `/usr`, `/etc`, `/var` give a copy of this host with its packages, on which
   * dpkg can install and remove a package.
   */
  overlays?: string[];
  /** Boot into this unit instead of default.target (`systemd.unit=`), so the host's enabled services stay out. */
  unit?: string;
}

export interface BootResult {
  code: number | null;
  timedOut: boolean;
  ms: number;
  /** What the container printed on its console (stdout and stderr interleaved). */
  console: string;
}

function hasNspawn(): boolean {
  return spawnSync('systemd-nspawn', ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * Gate at the top of a test: root, systemd-nspawn, and node under /usr (a volatile container sees
 * only the host's /usr). True when the test must stop (skipped; fails instead in CI).
 */
export function needsNspawn(t: TestContext): boolean {
  if (needs(t, isRoot(), 'root')) return true;
  if (needs(t, hasNspawn(), 'systemd-nspawn (apt-get install systemd-container)')) return true;
  return needs(t, process.execPath.startsWith('/usr/'), `node under /usr (--volatile=yes shows only the host's /usr; it is ${process.execPath})`);
}

async function removeCgroupTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const subdirs = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const d of subdirs) if (d.isDirectory()) await removeCgroupTree(join(dir, d.name));
  await rmdir(dir).catch(() => undefined);
}

/** Boots the container, waits for it to power off (or kills it at the timeout), cleans its cgroups. */
export async function bootContainer(options: BootOptions): Promise<BootResult> {
  const cgroupName = `sentinel-test-nspawn-${String(process.pid)}-${randomBytes(4).toString('hex')}`;
  const cgroupDirs = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'].map((b) => join(b, cgroupName));
  const args = [
    '-D', '/', '--volatile=yes', '--boot', '--register=no', '--keep-unit', '--console=pipe',
    ...(options.hostNetwork === true ? [] : ['--private-network']),
    ...(options.overlays ?? []).map((d) => `--overlay=${d}::${d}`),
    ...options.args,
    ...(options.unit === undefined ? [] : [`systemd.unit=${options.unit}`]),
    ...options.wants.map((u) => `systemd.wants=${u}`),
  ];
  try {
    const usable: string[] = [];
    for (const d of cgroupDirs) if (await mkdir(d).then(() => true, () => false)) usable.push(d);
    // Enter the unique cgroups first, then exec nspawn: its payload/supervisor cgroups are created beneath them.
    const enter = usable.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ');
    const script = `${enter === '' ? '' : `${enter} && `}exec systemd-nspawn "$@"`;
    const started = Date.now();
    const chunks: Buffer[] = [];
    const exit = await new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
      const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (b: Buffer) => chunks.push(b));
      child.stderr.on('data', (b: Buffer) => chunks.push(b));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, options.timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, timedOut });
      });
    });
    return { ...exit, ms: Date.now() - started, console: Buffer.concat(chunks).toString('utf8') };
  } finally {
    for (const d of cgroupDirs) await removeCgroupTree(d);
  }
}

/** A scenario's results in its /out directory: NAME.rc and NAME.out per step, and `finished`. */
export interface ScenarioSteps {
  /** One file of /out; a missing one fails the test with the console's tail. */
  read: (name: string) => Promise<string>;
  /** A step's output, after asserting that it exited 0. */
  stepOk: (name: string) => Promise<string>;
}

// Why: the nspawn scenarios (package, checkout install, metrics) write their steps to /out the same
// way; this checks that the container powered off and the scenario finished, then reads the steps.
export async function scenarioSteps(boot: BootResult, out: string, timeoutMs: number): Promise<ScenarioSteps> {
  const tail = `console tail:\n${boot.console.slice(-3000)}`;
  assert.equal(boot.timedOut, false, `container did not power off within ${String(timeoutMs)} ms; ${tail}`);
  const read = async (name: string): Promise<string> => readFile(join(out, name), 'utf8').catch(() => assert.fail(`no /out/${name} from the scenario; ${tail}`));
  const stepOk = async (name: string): Promise<string> => {
    const [rc, text] = [(await read(`${name}.rc`)).trim(), await read(`${name}.out`)];
    assert.equal(rc, '0', `${name} exited ${rc}:\n${text}`);
    return text;
  };
  assert.equal((await read('finished')).trim(), 'done');
  return { read, stepOk };
}

// Why: the reporter-style boots (the sentinel unit, its eBPF engine, the backend units, the restart
// race) each end with a reporter unit writing one JSON file to /out; this checks that the container
// powered off and returns that file, either failure with the console's tail.
export async function reporterResult<T>(boot: BootResult, out: string, file: string, timeoutMs: number): Promise<T> {
  assert.equal(boot.timedOut, false, `container did not power off within ${String(timeoutMs)} ms; console tail:\n${boot.console.slice(-4000)}`);
  try {
    return JSON.parse(await readFile(join(out, file), 'utf8')) as T;
  } catch (e) {
    assert.fail(`no /out/${file} from the reporter (${String(e)}); console tail:\n${boot.console.slice(-4000)}`);
  }
}
