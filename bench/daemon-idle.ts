// Idle cost of the daemon guarding a 10,000-file vault: RSS and CPU over a window, against a minimal idle Node
// process measured in the same run (target: <= 90 MB RSS, CPU near zero, no growth).
// Usage: node dist/bench/daemon-idle.js [--seconds 60] [--files 10000]
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { sendRequest } from '../src/adapters/control-client.js';
import type { TreeSpec } from '../test/helpers/vault-factory.js';
import { deployedVault, shippedUnitRuntime, spawnDaemon, stopDaemon, waitForStatus, writeDaemonConfig } from './lib/bench-daemon.js';
import { CLK_TCK, childPids, procSample } from './lib/proc-sample.js';
import { numberArg } from './lib/args.js';

const seconds = numberArg('seconds', 60);
const fileCount = numberArg('files', 10_000);

function childrenRssMB(pid: number): { pids: number[]; rssMB: number } {
  const pids = childPids(pid);
  let kb = 0;
  for (const c of pids) {
    try {
      kb += procSample(c).rssKB;
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
  const first = procSample(pid);
  let maxRss = first.rssKB;
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    maxRss = Math.max(maxRss, procSample(pid).rssKB);
  }
  const last = procSample(pid);
  const cpuSeconds = (last.cpuTicks - first.cpuTicks) / CLK_TCK;
  return { process: label, rssStartMB: +(first.rssKB / 1024).toFixed(1), rssEndMB: +(last.rssKB / 1024).toFixed(1), rssMaxMB: +(maxRss / 1024).toFixed(1), cpuSeconds, cpuPercent: +((100 * cpuSeconds) / seconds).toFixed(2), inotifyWatches: inotifyWatches(pid), childProcesses: childrenRssMB(pid) };
}

const tree: TreeSpec = [];
const dirs = 100;
for (let d = 0; d < dirs; d++) tree.push({ type: 'dir', path: `d${String(d).padStart(3, '0')}` });
for (let i = 0; i < fileCount; i++) tree.push({ type: 'file', path: `d${String(i % dirs).padStart(3, '0')}/f${String(i)}.py`, content: `# file ${String(i)}\n` });

const bv = await deployedVault('bench-idle', tree);
const sock = bv.sock;
const config = writeDaemonConfig(bv);

// The daemon runs with the node flags and environment of the shipped unit, so the figure is the service's.
const runtime = shippedUnitRuntime();
const daemon = spawnDaemon(config, runtime);
const peer = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e6)'], { stdio: 'ignore' });
try {
  await waitForStatus(sock);
  const [d, p] = await Promise.all([watch(daemon, 'sentinel daemon'), watch(peer, 'idle node')]);
  const status = (await sendRequest(sock, { op: 'status' }, { timeoutMs: 5_000 })) as { result: { daemon: { memory: Record<string, number>; hashWorkers: boolean } } };
  const mem = Object.fromEntries(Object.entries(status.result.daemon.memory).map(([k, v]) => [k, +(v / 1048576).toFixed(1)]));
  console.log(JSON.stringify({ bench: 'daemon-idle', files: fileCount, seconds, nodeFlags: runtime.nodeFlags, unitEnv: runtime.unitEnv, results: [d, p], daemonMemoryMB: mem, hashWorkers: status.result.daemon.hashWorkers, targetRssMB: 90 }));
} finally {
  peer.kill('SIGKILL');
  await stopDaemon(daemon, bv);
}
