// Detection latency: SIGKILL of the sample backend → recovery action started, measured on
// the killer's clock (and from the kernel's exit timestamp for eBPF), for the eBPF path, the /proc
// poll fallback, and a plain HTTP health check every 1 s as the peer.
// Usage (root, the eBPF engine built): node dist/bench/ebpf-latency.js [--kills 100] [--peer-kills 20] [--json FILE]
import { writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { createLogger } from '../src/adapters/logger.js';
import { httpProbe } from '../src/adapters/http-probe.js';
import { TargetSupervisor, type TargetSupervisorDeps } from '../src/daemon/targets/index.js';
import { targetSchema } from '../src/daemon/targets/spec.js';
import { EbpfHost } from '../src/daemon/ebpf-host.js';
import { TargetEventRecorder } from '../src/cli/demo/event-recorder.js';
import { freePort, sampleBackendCommand, waitForHealthy } from '../src/cli/demo/sample-backend.js';
import { numberArg, optionalArg } from './lib/args.js';

const jsonOut = optionalArg('json');

interface Summary {
  path: string;
  n: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
  kernelMedianMs?: number;
}

function summarize(path: string, xs: number[], kernel?: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
  const out: Summary = { path, n: s.length, medianMs: q(0.5), p99Ms: q(0.99), maxMs: s[s.length - 1] ?? NaN };
  if (kernel !== undefined && kernel.length > 0) {
    const k = [...kernel].sort((a, b) => a - b);
    out.kernelMedianMs = k[Math.ceil(0.5 * k.length) - 1] ?? NaN;
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = createLogger('error');

/** Kills the supervised backend `kills` times; returns kill → recovery-started (ms) on the killer's clock. */
async function measureSupervisor(path: string, kills: number, deps: Partial<TargetSupervisorDeps>): Promise<Summary> {
  const port = await freePort();
  const rec = new TargetEventRecorder();
  const spec = targetSchema.parse({ name: 'bench', command: sampleBackendCommand(port), port, budget: { burst: 1000, intervalMs: 1 }, backoff: { initialMs: 0, maxMs: 0 } });
  const sup = new TargetSupervisor([spec], { log, audit: rec.record, childExitEvents: false, ...deps });
  const latencies: number[] = [];
  const kernel: number[] = [];
  try {
    await sup.start();
    await waitForHealthy(`http://127.0.0.1:${port}/health`);
    const mode = sup.status()[0]?.mode;
    for (let i = 0; i < kills; i++) {
      await sleep(30 + Math.random() * 70); // random phase against any poll interval
      const pid = sup.pids()[0];
      if (pid === undefined) throw new Error('no PID to kill');
      const from = rec.events.length;
      const killNs = process.hrtime.bigint();
      process.kill(pid, 'SIGKILL');
      const started = await rec.next((e) => e.event === 'recovery-started', 10_000, 'recovery start', from);
      const exit = rec.events.slice(from).find((e) => e.event === 'exit');
      latencies.push(Number(BigInt(String(started.startedNs)) - killNs) / 1e6);
      if (exit?.via === 'ebpf') kernel.push(Number(started.latencyMs));
      await rec.next((e) => e.event === 'recovered', 10_000, 'recovered', from);
    }
    console.error(`${path}: mode ${mode}, ${kills} kills done`);
  } finally {
    await sup.stop();
  }
  return summarize(path, latencies, kernel);
}

/** The peer: a plain HTTP health check every second; "action started" = first failed check. */
async function measureHealthPeer(kills: number): Promise<Summary> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/health`;
  const [file, ...args] = sampleBackendCommand(port);
  const latencies: number[] = [];
  for (let i = 0; i < kills; i++) {
    const child = execa(file!, args, { reject: false, stdio: 'ignore' });
    await waitForHealthy(url);
    // health checks on a fixed 1 s schedule, started independently of the kill
    const phase = Math.random() * 1000;
    const checkerStart = performance.now();
    let detectedAt = 0;
    let killAt = 0;
    const checker = (async () => {
      for (let k = 0; ; k++) {
        const due = checkerStart + k * 1000;
        await sleep(Math.max(0, due - performance.now()));
        const r = await httpProbe(url, 1000);
        if (!r.ok && killAt > 0) {
          detectedAt = performance.now();
          return;
        }
      }
    })();
    await sleep(1000 + phase);
    killAt = performance.now();
    child.kill('SIGKILL');
    await checker;
    await child;
    latencies.push(detectedAt - killAt);
  }
  console.error(`http-1s peer: ${kills} kills done`);
  return summarize('http health check every 1 s', latencies);
}

const kills = numberArg('kills', 100);
const peerKills = numberArg('peer-kills', 20);
const results: Summary[] = [];
const engine = new EbpfHost({ log });
await engine.start();
if (engine.unavailable !== null) console.error(`no eBPF engine (${engine.unavailable}): the first path polls`);
results.push(await measureSupervisor('eBPF engine (sched_process_exit)', kills, { ebpf: engine }));
await engine.close();
results.push(await measureSupervisor('/proc poll every 10 ms', kills, { pollIntervalMs: 10 }));
results.push(await measureSupervisor('child exit event (supervised command)', kills, { childExitEvents: true }));
results.push(await measureHealthPeer(peerKills));

const ebpf = results[0]!;
const peer = results[3]!;
console.log('| path | kills | median ms | p99 ms | max ms |');
console.log('|---|---|---|---|---|');
for (const r of results) console.log(`| ${r.path} | ${r.n} | ${r.medianMs.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(2)} |`);
if (ebpf.kernelMedianMs !== undefined) console.log(`\neBPF, kernel exit timestamp → recovery started: median ${ebpf.kernelMedianMs.toFixed(2)} ms`);
console.log(`eBPF median is ${(peer.medianMs / ebpf.medianMs).toFixed(0)}× faster than the 1 s HTTP health check (target ≥ 20×, eBPF median < 5 ms: ${ebpf.medianMs < 5 ? 'met' : 'NOT met'})`);
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ results, ratio: peer.medianMs / ebpf.medianMs }, null, 2));
