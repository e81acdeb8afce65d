// Idle cost of the daemon guarding a 10,000-file vault: RSS and CPU over a window, against a minimal idle Node
// process measured in the same run (target: <= 90 MB RSS, CPU near zero, no growth).
// Usage: node dist/bench/daemon-idle.js [--seconds 60] [--files 10000]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePublicKey } from '../src/core/keys.js';
import { packageRoot } from '../src/adapters/package-root.js';
import { sendRequest } from '../src/adapters/control-client.js';
import { cleanupAll, makeVault, tempDir, type TreeSpec } from '../test/helpers/vault-factory.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const seconds = arg('seconds', 60);
const fileCount = arg('files', 10_000);
const CLK_TCK = 100;

function sample(pid: number): { rssKB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const rssKB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKB, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

function childrenRssMB(pid: number): { pids: number[]; rssMB: number } {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${String(pid)}/task`)) {
    try {
      for (const c of readFileSync(`/proc/${String(pid)}/task/${task}/children`, 'utf8').trim().split(/\s+/)) if (c !== '') pids.push(Number(c));
    } catch {
      // thread gone
    }
  }
  let kb = 0;
  for (const c of pids) {
    try {
      kb += sample(c).rssKB;
    } catch {
      // child gone
    }
  }
  return { pids, rssMB: +(kb / 1024).toFixed(1) };
}

function inotifyWatches(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${String(pid)}/fd`)) {
    try {
      if (readlinkSync(`/proc/${String(pid)}/fd/${fd}`) !== 'anon_inode:inotify') continue;
      n += readFileSync(`/proc/${String(pid)}/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    } catch {
      // fd closed while reading
    }
  }
  return n;
}

async function watch(child: ChildProcess, label: string): Promise<Record<string, unknown>> {
  const pid = child.pid!;
  const first = sample(pid);
  let maxRss = first.rssKB;
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    maxRss = Math.max(maxRss, sample(pid).rssKB);
  }
  const last = sample(pid);
  const cpuSeconds = (last.cpuTicks - first.cpuTicks) / CLK_TCK;
  return { process: label, rssStartMB: +(first.rssKB / 1024).toFixed(1), rssEndMB: +(last.rssKB / 1024).toFixed(1), rssMaxMB: +(maxRss / 1024).toFixed(1), cpuSeconds, cpuPercent: +((100 * cpuSeconds) / seconds).toFixed(2), inotifyWatches: inotifyWatches(pid), childProcesses: childrenRssMB(pid) };
}

const tree: TreeSpec = [];
const dirs = 100;
for (let d = 0; d < dirs; d++) tree.push({ type: 'dir', path: `d${String(d).padStart(3, '0')}` });
for (let i = 0; i < fileCount; i++) tree.push({ type: 'file', path: `d${String(i % dirs).padStart(3, '0')}/f${String(i)}.py`, content: `# file ${String(i)}\n` });

const tv = await makeVault('bench-idle');
const dir = tempDir('bench-idle-d');
const sock = join(dir, 's.sock');
writeFileSync(join(dir, 'release.pub'), encodePublicKey(tv.keys[0]!.public));
const b1 = await tv.bundle(1, tree, { created: new Date(Date.now() - 60_000), expires: new Date(Date.now() + 86_400_000) });
await tv.vault.deploy(b1.path);
await tv.deps.hash.close();
writeFileSync(join(dir, 'sentinel.json'), JSON.stringify({ vault: { path: tv.path, trust: [join(dir, 'release.pub')] }, control: { socket: sock }, audit: { path: join(dir, 'audit.log') }, stateDir: dir, log: { level: 'warn' } }));

// The daemon runs with the node flags and environment of the shipped unit, so the figure is the service's.
const unit = readFileSync(join(packageRoot(), 'systemd', 'omnimind-sentinel.service'), 'utf8');
const nodeFlags = (/^ExecStart=@NODE@ (.*?)@SENTINEL_CLI@/m.exec(unit)?.[1] ?? '').trim().split(/\s+/).filter((f) => f !== '');
const unitEnv = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)].map((m) => [m[1]!, m[2]!]));
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const daemon = spawn(process.execPath, [...nodeFlags, cli, 'daemon', '--config', join(dir, 'sentinel.json')], { stdio: 'ignore', env: { ...process.env, ...unitEnv } });
const peer = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e6)'], { stdio: 'ignore' });
try {
  const end = Date.now() + 120_000;
  for (;;) {
    try {
      await sendRequest(sock, { op: 'status' }, { timeoutMs: 5_000 });
      break;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const [d, p] = await Promise.all([watch(daemon, 'sentinel daemon'), watch(peer, 'idle node')]);
  const status = (await sendRequest(sock, { op: 'status' }, { timeoutMs: 5_000 })) as { result: { daemon: { memory: Record<string, number>; hashWorkers: boolean } } };
  const mem = Object.fromEntries(Object.entries(status.result.daemon.memory).map(([k, v]) => [k, +(v / 1048576).toFixed(1)]));
  console.log(JSON.stringify({ bench: 'daemon-idle', files: fileCount, seconds, nodeFlags, unitEnv, results: [d, p], daemonMemoryMB: mem, hashWorkers: status.result.daemon.hashWorkers, targetRssMB: 90 }));
} finally {
  daemon.kill('SIGTERM');
  peer.kill('SIGKILL');
  await new Promise((r) => daemon.once('exit', r));
  spawnSync('chattr', ['-R', '-f', '-a', dir]);
  cleanupAll();
}
