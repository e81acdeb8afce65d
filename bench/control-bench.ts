// The control socket under hostile load, against the same daemon unloaded in the same run:
// 1. time for `status` to answer while 64 idle clients hold connections (peer: status with none; goal < 100 ms);
// 2. daemon RSS before, during and 60 s after 24 clients each send 64 MiB without a newline — once as junk bytes,
//    once as the start of an inline bundle (`{"op":"deploy","bundleBase64":"AAAA…`), which is streamed to disk,
//    once as one endless string field (`{"op":"status","id":"aaaa…`), refused once the fields pass their limit
//    (goal: peak bounded by limits.maxBufferedBytes, back within 20 MB of idle afterwards).
// Usage: node dist/bench/control-bench.js [--clients 24] [--mib 64] [--idle 64] [--settle 60]
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sendRequest } from '../src/adapters/control-client.js';
import { DEFAULT_DAEMON_LIMITS } from '../src/core/config-limits.js';
import { sampleTree } from '../test/helpers/vault-factory.js';
import { deployedVault, shippedUnitRuntime, spawnDaemon, stopDaemon, waitForStatus, writeDaemonConfig } from './lib/bench-daemon.js';
import { procSample } from './lib/proc-sample.js';
import { numberArg } from './lib/args.js';

const clients = numberArg('clients', 24);
const mib = numberArg('mib', 64);
const idleClients = numberArg('idle', 64);
const settleSeconds = numberArg('settle', 60);

function rssMB(pid: number): number {
  return +(procSample(pid).rssKB / 1024).toFixed(1);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return +(s[Math.floor(s.length / 2)] ?? NaN).toFixed(2);
}

async function statusTimes(sock: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = (await sendRequest(sock, { op: 'status' }, { timeoutMs: 120_000 })) as { ok: boolean };
    if (!r.ok) throw new Error(`status refused: ${JSON.stringify(r)}`);
    out.push(performance.now() - t0);
  }
  return out;
}

function openIdle(sock: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: sock, allowHalfOpen: true });
    s.on('error', () => undefined);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// Sends `total` bytes (a prefix, then filler) without a newline, as fast as the daemon takes them; ends when the
// daemon answers or closes, or all is sent (then waits for the daemon's idle timeout to let it go).
function flood(sock: string, prefix: string, fill: number, total: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(sock);
    const chunk = Buffer.alloc(1024 * 1024, fill);
    let sent = 0;
    const done = (): void => {
      s.destroy();
      resolve();
    };
    s.on('error', done);
    s.on('close', done);
    s.on('data', done);
    const pump = (): void => {
      while (sent < total) {
        const piece = sent === 0 ? Buffer.concat([Buffer.from(prefix), chunk.subarray(prefix.length)]) : chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!s.write(piece)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    s.once('connect', pump);
  });
}

async function memoryRun(pid: number, sock: string, label: string, prefix: string, fill: number): Promise<Record<string, unknown>> {
  await new Promise((r) => setTimeout(r, 3_000));
  const idle = rssMB(pid);
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMB(pid));
  }, 50);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, () => flood(sock, prefix, fill, mib * 1024 * 1024)));
  const floodSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  const during = (await sendRequest(sock, { op: 'status' }, { timeoutMs: 60_000 })) as { result: { control: { peakBufferedBytes: number } } };
  await new Promise((r) => setTimeout(r, settleSeconds * 1000));
  clearInterval(sampler);
  const after = rssMB(pid);
  return { load: label, clients, mibEach: mib, floodSeconds, rssIdleMB: idle, rssPeakMB: peak, rssAfterMB: after, afterMinusIdleMB: +(after - idle).toFixed(1), peakMinusIdleMB: +(peak - idle).toFixed(1), peakBufferedMB: +(during.result.control.peakBufferedBytes / 1048576).toFixed(2) };
}

const bv = await deployedVault('bench-control', sampleTree('v1'));
const sock = bv.sock;
const config = writeDaemonConfig(bv);

// The daemon runs with the node flags and environment of the shipped unit, so the figure is the service's.
const runtime = shippedUnitRuntime();
const daemon = spawnDaemon(config, runtime);
const idleSockets: Socket[] = [];
try {
  await waitForStatus(sock);
  const alone = await statusTimes(sock, 30);
  for (let i = 0; i < idleClients; i++) idleSockets.push(await openIdle(sock));
  const crowded = await statusTimes(sock, 30);
  for (const s of idleSockets.splice(0)) s.destroy();
  const statusResult = { idleClients, statusAloneMedianMs: median(alone), statusWithIdleMedianMs: median(crowded), statusWithIdleMaxMs: +Math.max(...crowded).toFixed(2), ratio: +(median(crowded) / median(alone)).toFixed(2), goalMs: 100 };
  const junk = await memoryRun(daemon.pid!, sock, 'junk bytes', '', 0x61);
  const upload = await memoryRun(daemon.pid!, sock, 'inline bundle prefix', '{"op":"deploy","bundleBase64":"', 0x41);
  const field = await memoryRun(daemon.pid!, sock, 'long string field', '{"op":"status","id":"', 0x61);
  console.log(JSON.stringify({ bench: 'control', limits: { maxClients: DEFAULT_DAEMON_LIMITS.maxClients, maxBufferedMB: DEFAULT_DAEMON_LIMITS.maxBufferedBytes / 1048576, maxRequestMB: DEFAULT_DAEMON_LIMITS.maxRequestBytes / 1048576, clientIdleMs: DEFAULT_DAEMON_LIMITS.clientIdleMs }, nodeFlags: runtime.nodeFlags, status: statusResult, memory: [junk, upload, field] }));
} finally {
  for (const s of idleSockets) s.destroy();
  await stopDaemon(daemon, bv);
}
