// The control socket under hostile load, against the same daemon unloaded in the same run:
// 1. time for `status` to answer while 64 idle clients hold connections (peer: status with none; goal < 100 ms);
// 2. daemon RSS before, during and 60 s after 24 clients each send 64 MiB without a newline — once as junk bytes,
//    once as the start of an inline bundle (`{"op":"deploy","bundleBase64":"AAAA…`), which is streamed to disk,
//    once as one endless string field (`{"op":"status","id":"aaaa…`), refused once the fields pass their limit
//    (goal: peak bounded by limits.maxBufferedBytes, back within 20 MB of idle afterwards).
// Usage: node dist/bench/control-bench.js [--clients 24] [--mib 64] [--idle 64] [--settle 60]
import { spawn, spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { encodePublicKey } from '../src/core/keys.js';
import { packageRoot } from '../src/adapters/package-root.js';
import { sendRequest } from '../src/adapters/control-client.js';
import { DEFAULT_DAEMON_LIMITS } from '../src/core/config-limits.js';
import { cleanupAll, makeVault, sampleTree, tempDir } from '../test/helpers/vault-factory.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const clients = arg('clients', 24);
const mib = arg('mib', 64);
const idleClients = arg('idle', 64);
const settleSeconds = arg('settle', 60);

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  return +(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024).toFixed(1);
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

const tv = await makeVault('bench-control');
const dir = tempDir('bench-control-d');
const sock = join(dir, 's.sock');
writeFileSync(join(dir, 'release.pub'), encodePublicKey(tv.keys[0]!.public));
const b1 = await tv.bundle(1, sampleTree('v1'), { created: new Date(Date.now() - 60_000), expires: new Date(Date.now() + 86_400_000) });
await tv.vault.deploy(b1.path);
await tv.deps.hash.close();
writeFileSync(join(dir, 'sentinel.json'), JSON.stringify({ vault: { path: tv.path, trust: [join(dir, 'release.pub')] }, control: { socket: sock }, audit: { path: join(dir, 'audit.log') }, stateDir: dir, log: { level: 'warn' } }));

// The daemon runs with the node flags and environment of the shipped unit, so the figure is the service's.
const unit = readFileSync(join(packageRoot(), 'systemd', 'omnimind-sentinel.service'), 'utf8');
const nodeFlags = (/^ExecStart=@NODE@ (.*?)@SENTINEL_CLI@/m.exec(unit)?.[1] ?? '').trim().split(/\s+/).filter((f) => f !== '');
const unitEnv = Object.fromEntries([...unit.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)].map((m) => [m[1]!, m[2]!]));
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const daemon = spawn(process.execPath, [...nodeFlags, cli, 'daemon', '--config', join(dir, 'sentinel.json')], { stdio: 'ignore', env: { ...process.env, ...unitEnv } });
const idleSockets: Socket[] = [];
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
  const alone = await statusTimes(sock, 30);
  for (let i = 0; i < idleClients; i++) idleSockets.push(await openIdle(sock));
  const crowded = await statusTimes(sock, 30);
  for (const s of idleSockets.splice(0)) s.destroy();
  const statusResult = { idleClients, statusAloneMedianMs: median(alone), statusWithIdleMedianMs: median(crowded), statusWithIdleMaxMs: +Math.max(...crowded).toFixed(2), ratio: +(median(crowded) / median(alone)).toFixed(2), goalMs: 100 };
  const junk = await memoryRun(daemon.pid!, sock, 'junk bytes', '', 0x61);
  const upload = await memoryRun(daemon.pid!, sock, 'inline bundle prefix', '{"op":"deploy","bundleBase64":"', 0x41);
  const field = await memoryRun(daemon.pid!, sock, 'long string field', '{"op":"status","id":"', 0x61);
  console.log(JSON.stringify({ bench: 'control', limits: { maxClients: DEFAULT_DAEMON_LIMITS.maxClients, maxBufferedMB: DEFAULT_DAEMON_LIMITS.maxBufferedBytes / 1048576, maxRequestMB: DEFAULT_DAEMON_LIMITS.maxRequestBytes / 1048576, clientIdleMs: DEFAULT_DAEMON_LIMITS.clientIdleMs }, nodeFlags, status: statusResult, memory: [junk, upload, field] }));
} finally {
  for (const s of idleSockets) s.destroy();
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('exit', r));
  spawnSync('chattr', ['-R', '-f', '-a', dir]);
  cleanupAll();
}
