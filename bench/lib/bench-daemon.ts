// What the benchmarks of a whole daemon process share: a vault with release 1 deployed, the
// daemon's config beside it, the daemon started as the shipped unit starts it, its first status
// answer, and the teardown.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePublicKey } from '../../src/core/keys.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { sendRequest } from '../../src/adapters/control-client.js';
import { cleanupAll, makeVault, tempDir, type TestVault, type TreeSpec } from '../../test/helpers/vault-factory.js';

/** A deployed vault and the daemon's directory (config, trust key, socket, audit log, state). */
export interface BenchVault {
  tv: TestVault;
  dir: string;
  sock: string;
}

// A vault named after `label` with `tree` signed and deployed as release 1; the test vault's own
// hashing workers are closed so they do not count against the benchmark.
export async function deployedVault(label: string, tree: TreeSpec): Promise<BenchVault> {
  const tv = await makeVault(label);
  const dir = tempDir(`${label}-d`);
  const sock = join(dir, 's.sock');
  writeFileSync(join(dir, 'release.pub'), encodePublicKey(tv.keys[0]!.public));
  const b1 = await tv.bundle(1, tree, { created: new Date(Date.now() - 60_000), expires: new Date(Date.now() + 86_400_000) });
  await tv.vault.deploy(b1.path);
  await tv.deps.hash.close();
  return { tv, dir, sock };
}

// Writes dir/sentinel.json for the vault: control socket, audit log and state in dir, log level
// warn; `vault` adds to the vault section, `rest` adds top-level sections (targets). Its path.
export function writeDaemonConfig(b: BenchVault, extra: { vault?: Record<string, unknown>; rest?: Record<string, unknown> } = {}): string {
  const file = join(b.dir, 'sentinel.json');
  const config = { vault: { path: b.tv.path, trust: [join(b.dir, 'release.pub')], ...extra.vault }, control: { socket: b.sock }, audit: { path: join(b.dir, 'audit.log') }, stateDir: b.dir, log: { level: 'warn' }, ...extra.rest };
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** The node flags and environment of the shipped unit's ExecStart. */
export interface UnitRuntime {
  nodeFlags: string[];
  unitEnv: Record<string, string>;
}

// Reads them from systemd/omnimind-sentinel.service, so a figure is the service's.
export function shippedUnitRuntime(): UnitRuntime {
  const unit = readFileSync(join(packageRoot(), 'systemd', 'omnimind-sentinel.service'), 'utf8');
  const nodeFlags = (/^ExecStart=@NODE@ (.*?)@SENTINEL_CLI@/m.exec(unit)?.[1] ?? '').trim().split(/\s+/).filter((f) => f !== '');
  const unitEnv = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { nodeFlags, unitEnv };
}

// `sentinel daemon --config FILE` from dist/, with the unit's node flags and environment.
export function spawnDaemon(configFile: string, runtime: UnitRuntime): ChildProcess {
  const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  return spawn(process.execPath, [...runtime.nodeFlags, cli, 'daemon', '--config', configFile], { stdio: 'ignore', env: { ...process.env, ...runtime.unitEnv } });
}

// Asks for status every 200 ms until an answer passes `ready` (by default the first answer);
// throws the last error, or `notReady`, after two minutes.
export async function waitForStatus<T>(sock: string, ready: (status: T) => boolean = () => true, notReady = 'the daemon never became ready'): Promise<T> {
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      const st = (await sendRequest(sock, { op: 'status' }, { timeoutMs: 5_000 })) as T;
      if (ready(st)) return st;
    } catch (e) {
      if (Date.now() > end) throw e;
    }
    if (Date.now() > end) throw new Error(notReady);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// SIGTERM and wait for the exit; then the audit log's +a comes off so every temporary directory goes.
export async function stopDaemon(daemon: ChildProcess, b: BenchVault): Promise<void> {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  spawnSync('chattr', ['-R', '-f', '-a', b.dir]);
  cleanupAll();
}
