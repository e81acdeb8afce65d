// Tamper-to-detected and tamper-to-healed latency of the daemon on a large vault (target: healed < 1 s on 100 MB).
// Usage: node dist/bench/daemon-latency.js [--mb 100] [--files 100] [--iterations 20]
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { encodePublicKey } from '../src/core/keys.js';
import { createLogger } from '../src/adapters/logger.js';
import { startDaemon } from '../src/daemon/main.js';
import { cleanupAll, makeVault, tempDir, type TreeSpec } from '../test/helpers/vault-factory.js';
import { numberArg } from './lib/args.js';

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

const megabytes = numberArg('mb', 100);
const fileCount = numberArg('files', 100);
const iterations = numberArg('iterations', 20);

const tree: TreeSpec = [{ type: 'dir', path: 'engine' }, { type: 'dir', path: 'weights' }];
const perFile = Math.floor((megabytes * 1024 * 1024) / fileCount);
for (let i = 0; i < fileCount; i++) tree.push({ type: 'file', path: `weights/w-${String(i).padStart(4, '0')}.bin`, content: Buffer.alloc(perFile, i % 251) });
tree.push({ type: 'file', path: 'engine/phi.py', content: 'def phi(x):\n    return x\n' });

const tv = await makeVault('bench-latency');
const dir = tempDir('bench-latency-d');
writeFileSync(join(dir, 'release.pub'), encodePublicKey(tv.keys[0]!.public));
const b1 = await tv.bundle(1, tree, { created: new Date(Date.now() - 60_000), expires: new Date(Date.now() + 86_400_000) });
await tv.vault.deploy(b1.path);
writeFileSync(join(dir, 'sentinel.json'), JSON.stringify({ vault: { path: tv.path, trust: [join(dir, 'release.pub')] }, control: { socket: join(dir, 's.sock') }, audit: { path: join(dir, 'audit.log') }, stateDir: dir, limits: { flagAuditIntervalMs: 60_000, verifyIntervalMs: 3_600_000, maxVerifyAgeMs: 3_600_000 } }));

const seen: { event: string; at: number }[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    const at = performance.now();
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line === '') continue;
      const ev = (JSON.parse(line) as { event?: string }).event;
      if (ev === 'tamper' || ev === 'heal') seen.push({ event: ev, at });
    }
    cb();
  },
});
const handle = await startDaemon({ configFile: join(dir, 'sentinel.json'), signals: false, logger: createLogger('info', sink) });
const detected: number[] = [];
const healed: number[] = [];
try {
  for (let i = 0; i < iterations; i++) {
    const target = join(tv.path, 'current', 'tree', 'weights', `w-${String(i % fileCount).padStart(4, '0')}.bin`);
    seen.length = 0;
    spawnSync('chattr', ['-i', target]);
    const t0 = performance.now();
    writeFileSync(target, 'tampered', { flag: 'r+' });
    const end = Date.now() + 30_000;
    while (!seen.some((s) => s.event === 'heal') && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
    const d = seen.find((s) => s.event === 'tamper');
    const h = seen.find((s) => s.event === 'heal');
    if (d === undefined || h === undefined) throw new Error(`iteration ${String(i)}: not healed within 30 s`);
    detected.push(d.at - t0);
    healed.push(h.at - t0);
    while (handle.sentinel.busyWith !== null) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
  }
} finally {
  await handle.stop('bench');
  spawnSync('chattr', ['-R', '-f', '-a', dir]);
  cleanupAll();
}
detected.sort((a, b) => a - b);
healed.sort((a, b) => a - b);
const fmt = (n: number): string => n.toFixed(1);
const result = {
  bench: 'daemon-latency',
  vaultMB: megabytes,
  files: fileCount + 1,
  iterations,
  detectedMs: { median: fmt(quantile(detected, 0.5)), p99: fmt(quantile(detected, 0.99)), max: fmt(detected[detected.length - 1] ?? NaN) },
  healedMs: { median: fmt(quantile(healed, 0.5)), p99: fmt(quantile(healed, 0.99)), max: fmt(healed[healed.length - 1] ?? NaN) },
  targetHealedMs: 1000,
};
console.log(JSON.stringify(result));
