// What the nspawn tests prepare on the host before a boot: a scratch directory with the operator's
// key pair (made by the built CLI), signed releases, the binds that show them to the container, and
// the unit properties a scenario prints back.
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { loadNative } from '../../src/adapters/native.js';

const root = packageRoot();
const cliPath = join(root, 'dist', 'src', 'cli', 'main.js');

// The built CLI run on the host (keygen, sign); its stdout.
export function hostCli(args: string[]): string {
  return execFileSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
}

/** The host side of a reporter-style boot; `dir` holds release.key and release.pub. */
export interface E2eDirs {
  dir: string;
  /** Shown as /etc/omnimind-sentinel; keys/release.pub is in it. */
  etc: string;
  /** Shown as /etc/sentinel-e2e: the bundles and the set-up script. */
  e2e: string;
  /** Shown writable as /out: what the reporter writes. */
  out: string;
  /** The tree the releases are signed from (not shown to the container). */
  src: string;
}

// A fresh mkdtemp directory named from `prefix` with etc/keys, e2e, out and src (and the given
// subdirectories of src), and a key pair whose public half is in etc/keys/release.pub. The
// directory is removed again if any of this fails; after that the caller removes it.
export async function prepareE2eDirs(prefix: string, srcSubdirs: string[] = []): Promise<E2eDirs> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const d = { dir, etc: join(dir, 'etc'), e2e: join(dir, 'e2e'), out: join(dir, 'out'), src: join(dir, 'src') };
  try {
    for (const sub of [join(d.etc, 'keys'), d.e2e, d.out, d.src, ...srcSubdirs.map((s) => join(d.src, s))]) await mkdir(sub, { recursive: true });
    hostCli(['keygen', '--out', join(dir, 'release')]);
    await copyFile(join(dir, 'release.pub'), join(d.etc, 'keys', 'release.pub'));
    return d;
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

// Signs src as release `version` of the vault `e2e-vault` into e2e/v<version>.bundle.
export function signE2eRelease(d: E2eDirs, version: number): void {
  hostCli(['sign', d.src, '--key', join(d.dir, 'release.key'), '--vault-id', 'e2e-vault', '--version', String(version), '--out', join(d.e2e, `v${String(version)}.bundle`)]);
}

// The binds every reporter-style boot has: the package read-only at `guestRoot`, etc, e2e and out.
export function e2eBinds(d: E2eDirs, guestRoot = '/opt/omnimind-sentinel'): string[] {
  return [`--bind-ro=${root}:${guestRoot}`, `--bind-ro=${d.etc}:/etc/omnimind-sentinel`, `--bind-ro=${d.e2e}:/etc/sentinel-e2e`, `--bind=${d.out}:/out`];
}

// A drop-in for the sentinel unit at `path`: without the native addon sd_notify goes through
// systemd-notify (another PID), which only NotifyAccess=all accepts.
export async function writeNotifyDropIn(path: string): Promise<void> {
  await writeFile(path, loadNative() === null ? '[Service]\nNotifyAccess=all\n' : '[Service]\n');
}

/** The host side of a scenario boot (README blocks run by a scenario.sh). */
export interface ScenarioDirs {
  dir: string;
  /** Shown as /in: release.pub, scenario.sh and what the test adds. */
  input: string;
  /** Shown writable as /out: the scenario's steps. */
  out: string;
}

// A fresh mkdtemp directory with in/ and out/, a key pair in it, release.pub and the fixture
// directory's scenario.sh in in/. Removed again if any of this fails; after that the caller removes it.
export async function prepareScenarioDirs(prefix: string, fixtures: string): Promise<ScenarioDirs> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const input = join(dir, 'in');
  const out = join(dir, 'out');
  try {
    await mkdir(input, { recursive: true });
    await mkdir(out, { recursive: true });
    hostCli(['keygen', '--out', join(dir, 'release')]);
    await copyFile(join(dir, 'release.pub'), join(input, 'release.pub'));
    await copyFile(join(fixtures, 'scenario.sh'), join(input, 'scenario.sh'));
    return { dir, input, out };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** The one `step` helper every nspawn scenario (test/fixtures/<name>/scenario.sh) sources, and where each container sees it. */
export const SCENARIO_STEP = join(root, 'test', 'fixtures', 'nspawn', 'scenario-step.sh');
export const SCENARIO_STEP_GUEST = '/etc/sentinel-scenario/step.sh';

// The nspawn arguments of a scenario that installs the checkout: the package as a throw-away overlay
// at /opt/omnimind-sentinel, in/ and out/, the step helper, and the fixtures' `<unit>.target` and `<unit>.service`.
export function checkoutScenarioArgs(s: ScenarioDirs, fixtures: string, unit: string): string[] {
  return [
    // The volatile root has no /opt: a tmpfs gives the checkout's overlay a parent to mount on.
    '--tmpfs=/opt:mode=0755',
    `--overlay=${root}::/opt/omnimind-sentinel`,
    `--bind-ro=${s.input}:/in`,
    `--bind=${s.out}:/out`,
    `--bind-ro=${SCENARIO_STEP}:${SCENARIO_STEP_GUEST}`,
    `--bind-ro=${join(fixtures, `${unit}.target`)}:/etc/systemd/system/${unit}.target`,
    `--bind-ro=${join(fixtures, `${unit}.service`)}:/etc/systemd/system/${unit}.service`,
  ];
}

// `systemctl show` output (KEY=VALUE lines) as an object.
export function unitProps(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
