// The whole guardian's footprint with one target and every detector on: the daemon (run with the
// shipped unit's node flags and environment) plus every process it starts except the target's own
// tree, idle and under a fork/exit storm of unrelated processes (~1,000/s), against an idle Node
// process measured in the same run (the peer). Also the engine's load + attach time at start, as the
// daemon reports it. The bpftrace-based guardian measured 284 MB (daemon 68 + two bpftrace 113 + 103).
// Usage (root, the engine built): node dist/bench/guardian-footprint.js [--seconds 20] [--rate 1000] [--json FILE]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { freePort, sampleBackendCommand, waitForHealthy } from '../src/cli/demo/sample-backend.js';
import { sampleTree } from '../test/helpers/vault-factory.js';
import { deployedVault, shippedUnitRuntime, spawnDaemon, stopDaemon, waitForStatus, writeDaemonConfig } from './lib/bench-daemon.js';
import { CLK_TCK, childPids, procSample } from './lib/proc-sample.js';
import { numberArg, optionalArg } from './lib/args.js';

const seconds = numberArg('seconds', 20);
const rate = numberArg('rate', 1000);
const jsonOut = optionalArg('json');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The daemon and all its descendants except the target's tree. */
function guardianPids(daemon: number, targetPid: number | null): number[] {
  const out = [daemon];
  for (let i = 0; i < out.length; i++) for (const c of childPids(out[i]!)) if (c !== targetPid) out.push(c);
  return out;
}

function sum(pids: number[]): { rssKB: number; ticks: number } {
  let rssKB = 0;
  let ticks = 0;
  for (const p of pids) {
    try {
      const s = procSample(p);
      rssKB += s.rssKB;
      ticks += s.cpuTicks;
    } catch {
      // gone
    }
  }
  return { rssKB, ticks };
}

/** Max RSS (MB) and CPU % of each group over `secs`. */
async function window(groups: Record<string, () => number[]>, secs: number): Promise<Record<string, { rssMaxMB: number; cpuPercent: number; processes: number }>> {
  const first = Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, sum(f())]));
  const max = Object.fromEntries(Object.entries(first).map(([k, v]) => [k, v.rssKB]));
  const procs: Record<string, number> = {};
  const t0 = performance.now();
  while (performance.now() - t0 < secs * 1000) {
    await sleep(500);
    for (const [k, f] of Object.entries(groups)) {
      const pids = f();
      procs[k] = pids.length;
      max[k] = Math.max(max[k] ?? 0, sum(pids).rssKB);
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  return Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, { rssMaxMB: +((max[k] ?? 0) / 1024).toFixed(1), cpuPercent: +((100 * (sum(f()).ticks - (first[k]?.ticks ?? 0))) / CLK_TCK / elapsed).toFixed(2), processes: procs[k] ?? 0 }]));
}

const STORM = `
import os, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < secs:
    due = n / rate
    now = time.monotonic() - t0
    if due > now: time.sleep(due - now)
    os.waitpid(os.posix_spawn('/bin/true', ['/bin/true'], {}), 0)
    n += 1
print(n / (time.monotonic() - t0))
`;

const bv = await deployedVault('bench-footprint', sampleTree('v1'));
const sock = bv.sock;
const port = await freePort();
// Every detector: kernel exits, health probe, retransmits, stall + syscall tracing, the notify watchdog; flag tracing of the vault.
const target = { name: 'backend', command: sampleBackendCommand(port), port, health: { url: `http://127.0.0.1:${port}/health` }, retransmit: { threshold: 50 }, stall: { thresholdMs: 2000 }, syscalls: { slowMs: 50 }, watchdog: { timeoutMs: 20_000 } };
const config = writeDaemonConfig(bv, { vault: { flagTracer: 'auto' }, rest: { targets: [target] } });

const daemon = spawnDaemon(config, shippedUnitRuntime());
const peer = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e6)'], { stdio: 'ignore' });
type Status = { result: { components: { ebpf?: { mode: string; reason: string | null; loadMs: number | null; attachMs: number | null; btf: string | null }; targets: { pid: number | null; state: string; mode: string; degraded: string | null }[] } } };
try {
  const st = await waitForStatus<Status>(sock, (s) => s.result.components.targets[0]?.state === 'running', 'the target never ran');
  await waitForHealthy(`http://127.0.0.1:${port}/health`, 30_000);
  const t = st.result.components.targets[0]!; // running, so there
  const ebpf = st.result.components.ebpf;
  const groups = { guardian: () => guardianPids(daemon.pid!, t.pid), 'idle node (peer)': () => [peer.pid!] };
  const idle = await window(groups, seconds);
  const stormSecs = Math.min(seconds, 10);
  const storm = spawn('python3', ['-c', STORM, String(rate), String(stormSecs)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let achieved = '';
  storm.stdout.on('data', (d: Buffer) => (achieved += d.toString()));
  const loaded = await window(groups, stormSecs);
  await new Promise((r) => storm.once('exit', r));
  const result = { bench: 'guardian-footprint', seconds, target: { mode: t.mode, degraded: t.degraded }, engine: ebpf, attachAtStartMs: ebpf?.loadMs != null && ebpf.attachMs != null ? +(ebpf.loadMs + ebpf.attachMs).toFixed(1) : null, idle, storm: { rate: Number(achieved.trim()).toFixed(0), ...loaded }, bpftraceGuardianMB: 284, targetMB: 90 };
  console.log('| process group | processes | RSS max MB idle | CPU % idle | RSS max MB storm | CPU % storm |');
  console.log('|---|---|---|---|---|---|');
  for (const k of Object.keys(groups)) console.log(`| ${k} | ${idle[k]?.processes} | ${idle[k]?.rssMaxMB} | ${idle[k]?.cpuPercent} | ${loaded[k]?.rssMaxMB} | ${loaded[k]?.cpuPercent} |`);
  console.log(`\nengine: ${ebpf?.mode} (${ebpf?.btf ?? ebpf?.reason ?? ''}); load ${ebpf?.loadMs} ms + attach ${ebpf?.attachMs} ms at start (target <= 100 ms); storm ${result.storm.rate}/s`);
  console.log(`guardian ${idle.guardian?.rssMaxMB} MB vs 284 MB with bpftrace (target <= 90 MB: ${(idle.guardian?.rssMaxMB ?? Infinity) <= 90 ? 'met' : 'NOT met'})`);
  if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify(result, null, 2));
} finally {
  peer.kill('SIGKILL');
  await stopDaemon(daemon, bv);
}
