// Prometheus metrics (`metrics.listen`): every documented metric served at GET /metrics and fed by the daemon's
// real events (a tamper and its heal, a killed target and its recovery), only GET /metrics answered, the
// listener bounded against clients that hold connections, a Unix socket 0600 root, a bad value refused on reload.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { makeTestCgroup, removeTestCgroup } from '../helpers/test-cgroup.js';
import { tempDir } from '../helpers/vault-factory.js';
import { SENTINEL_METRICS, freePort, httpGet, parseExposition, sample } from '../helpers/metrics.js';
import { MetricsServer } from '../../src/daemon/metrics-server.js';
import { detectorOf } from '../../src/daemon/metrics.js';
import { createLogger } from '../../src/adapters/logger.js';

after(() => cleanupDaemonFiles());

const chattr = (...args: string[]): void => {
  const r = spawnSync('chattr', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};

interface TargetView {
  pid: number | null;
  state: string;
  restarts: number;
}

test('GET /metrics: every metric with its vault or target label, fed by a tamper, its heal and a target recovery', { timeout: 120_000 }, async (t) => {
  const cgroupRoot = makeTestCgroup(t, 'metrics', 'root (chattr +i)');
  if (cgroupRoot === null) return;
  const listen = `127.0.0.1:${String(await freePort())}`;
  const d = await startTestDaemon('metrics', {
    metrics: { listen },
    // The watch sees the write below; no flag audit racing the write (it could heal between chattr and write).
    limits: { flagAuditIntervalMs: 60_000, verifyIntervalMs: 600_000 },
    targets: [{ name: 'worker', command: ['sleep', '300'], port: 8000 }],
    protection: { cgroupRoot, oomScoreAdj: 0 },
  });
  t.after(async () => {
    await d.handle.stop('test');
    await removeTestCgroup(cgroupRoot);
  });
  const scrape = async (): Promise<Map<string, number>> => {
    const r = await httpGet(listen, '/metrics');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return parseExposition(r.body);
  };
  const vault = { vault: d.tv.path };
  const worker = (): Promise<TargetView> => waitFor('worker running', 15_000, async () => {
    const w = ((await d.handle.status()) as { components: { targets: TargetView[] } }).components.targets[0];
    return w !== undefined && w.pid !== null && w.state === 'running' ? w : null;
  });
  const first = await worker();

  let m = await waitFor('protection settled', 15_000, async () => {
    const s = await scrape();
    return sample(s, 'sentinel_protection_state', { item: 'slice', state: 'pending' }) === 0 ? s : null;
  });
  for (const name of SENTINEL_METRICS) {
    const series = [...m.keys()].filter((k) => k === name || k.startsWith(`${name}{`) || k.startsWith(`${name}_`));
    if (name === 'sentinel_recovery_latency_seconds') continue; // only once a recovery happened (below)
    assert.ok(series.length > 0, `${name} is exposed`);
    assert.ok(series.every((k) => /[{,](vault|target)="/.test(k)), `${name} carries a vault or target label: ${series.join(' ')}`);
  }
  assert.equal(sample(m, 'sentinel_vault_intact', vault), 1);
  assert.equal(sample(m, 'sentinel_vault_version', vault), 1);
  assert.equal(sample(m, 'sentinel_tampers_total', vault), 0, JSON.stringify(d.logLines.filter((l) => l.event === 'tamper' || l.event === 'flag-audit')));
  assert.equal(sample(m, 'sentinel_watchdog_healthy', vault), 1);
  assert.equal(sample(m, 'sentinel_target_up', { target: 'worker' }), 1);
  assert.equal(sample(m, 'sentinel_target_restarts_total', { target: 'worker' }), 0);
  assert.equal(sample(m, 'sentinel_protection_state', { item: 'slice', state: 'applied' }), 1, 'the slice holds');
  assert.equal(sample(m, 'sentinel_protection_state', { item: 'slice', state: 'refused' }), 0);
  assert.ok(m.has('process_cpu_seconds_total'), 'the default process metrics too');

  // A tamper, healed: the counters, the histogram and the gauge follow.
  const engine = join(d.tv.path, 'current', 'tree', 'phi', 'engine.py');
  const original = readFileSync(engine, 'utf8');
  chattr('-i', engine);
  writeFileSync(engine, 'def phi(x):\n    return 42\n');
  m = await waitFor('tamper and heal in the metrics', 20_000, async () => {
    const s = await scrape();
    return (sample(s, 'sentinel_heals_total', vault) ?? 0) >= 1 ? s : null;
  });
  assert.equal(readFileSync(engine, 'utf8'), original);
  assert.equal(sample(m, 'sentinel_tampers_total', vault), 1);
  assert.equal(sample(m, 'sentinel_heal_duration_seconds_count', vault), 1);
  assert.ok((sample(m, 'sentinel_heal_duration_seconds_sum', vault) ?? 0) > 0);
  assert.equal(sample(m, 'sentinel_vault_intact', vault), 1);

  // A killed target: restarts and the recovery latency by the detector that saw the exit.
  process.kill(first.pid!, 'SIGKILL');
  await waitFor('worker respawned', 15_000, async () => ((await worker()).pid !== first.pid ? true : null));
  m = await scrape();
  assert.equal(sample(m, 'sentinel_target_restarts_total', { target: 'worker' }), 1);
  assert.equal(sample(m, 'sentinel_target_up', { target: 'worker' }), 1);
  const latency = [...m.entries()].filter(([k]) => k.startsWith('sentinel_recovery_latency_seconds_count{'));
  assert.equal(latency.length, 1, JSON.stringify(latency));
  assert.match(latency[0]![0], /detector="(ebpf|poll|child)"/);
  assert.match(latency[0]![0], /target="worker"/);
  assert.equal(latency[0]![1], 1);

  // Only GET (or HEAD) /metrics.
  assert.equal((await httpGet(listen, '/')).status, 404);
  assert.equal((await httpGet(listen, '/metrics/x')).status, 404);
  assert.equal((await httpGet(listen, '/metrics', 'POST')).status, 405);
  assert.equal((await httpGet(listen, '/metrics', 'HEAD')).status, 200);
});

test('a Unix socket listener is 0600 root, served, removed at stop; a bad metrics.listen on reload is refused, a changed one waits for a restart', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const sock = join(tempDir('metrics-unix'), 'run', 'metrics.sock');
  const d = await startTestDaemon('metrics-unix', { metrics: { listen: sock } });
  try {
    const st = statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, 0);
    const r = await httpGet(sock, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(sample(parseExposition(r.body), 'sentinel_vault_intact', { vault: d.tv.path }), 1);

    const good = JSON.parse(readFileSync(d.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(d.configPath, JSON.stringify({ ...good, metrics: { listen: 'metrics.example:9464' } }));
    assert.equal(await d.handle.reload(), false, 'refused');
    const s = (await d.handle.status()) as { reload: { ok: boolean; error: { code: string; message: string } } };
    assert.equal(s.reload.ok, false);
    assert.match(s.reload.error.message, /metrics\.listen: /);
    writeFileSync(d.configPath, JSON.stringify({ ...good, metrics: { listen: '127.0.0.1:9464' } }));
    assert.equal(await d.handle.reload(), true);
    const after = (await d.handle.status()) as { reload: { ok: boolean; ignored: string[] } };
    assert.deepEqual(after.reload.ignored, ['metrics.listen']);
    assert.equal((await httpGet(sock, '/metrics')).status, 200, 'still served where it was');
  } finally {
    await d.handle.stop('test');
  }
  assert.equal(existsSync(sock), false, 'the socket file is removed at stop');
});

test('the listener is bounded: connections held open without a request are closed, and a scrape gets through again', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const server = new MetricsServer({ listen: { kind: 'tcp', host: '127.0.0.1', port }, log: createLogger('silent'), contentType: 'text/plain; version=0.0.4', render: () => Promise.resolve('up 1\n'), limits: { maxConnections: 4, headersTimeoutMs: 600, requestTimeoutMs: 1_000, idleTimeoutMs: 800 } });
  await server.listen();
  const held: Socket[] = [];
  t.after(async () => {
    for (const s of held) s.destroy();
    await server.close();
  });
  const closed: Promise<number>[] = [];
  const started = Date.now();
  for (let i = 0; i < 4; i++) {
    const s = connect(port, '127.0.0.1');
    held.push(s);
    s.on('error', () => undefined);
    // Slowloris: a request line and one header, then nothing more.
    s.write(i % 2 === 0 ? 'GET /metrics HTTP/1.1\r\nHost: x\r\n' : '');
    closed.push(new Promise((resolve) => s.once('close', () => resolve(Date.now() - started))));
  }
  await new Promise((r) => setTimeout(r, 100));
  // Every slot is held: a new connection is closed at once, not queued behind them.
  await assert.rejects(httpGet(`127.0.0.1:${String(port)}`, '/metrics', 'GET', 2_000), /socket hang up|ECONNRESET|no reply/);
  const times = await Promise.all(closed);
  for (const ms of times) assert.ok(ms < 5_000, `a held connection is closed by the server (after ${String(ms)} ms)`);
  const r = await httpGet(`127.0.0.1:${String(port)}`, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'up 1\n');
});

test('the detector label names what started a recovery, from the reasons the supervisor gives', () => {
  assert.equal(detectorOf('main PID 42 exited (signal 9)', 'ebpf'), 'ebpf');
  assert.equal(detectorOf('main PID 42 exited (status 1)', 'poll'), 'poll');
  assert.equal(detectorOf('health probe failed 3 times in a row (timeout)', undefined), 'health');
  assert.equal(detectorOf('12 TCP retransmits on port 8000 within 1000 ms', undefined), 'retransmit');
  assert.equal(detectorOf('main thread stalled: away from its wait syscall for 2100 ms (threshold 2000 ms)', undefined), 'stall');
  assert.equal(detectorOf('not running at start: no main PID', undefined), 'start');
  assert.equal(detectorOf('reset by the operator (was failed)', undefined), 'operator');
  assert.equal(detectorOf('something new', undefined), 'other');
});
