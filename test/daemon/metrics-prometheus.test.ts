// The metrics against a real Prometheus server (Debian's `prometheus` package): it scrapes a running daemon
// every second, a tamper and its heal are made in the daemon's vault, and PromQL over the HTTP API returns
// them. The shipped alert rules pass `promtool check rules` and load into that server; the Grafana dashboard
// parses and names only metrics the daemon exposes. Under CI a missing prometheus fails the test.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { tempDir } from '../helpers/vault-factory.js';
import { SENTINEL_METRICS, freePort, httpGet } from '../helpers/metrics.js';

after(() => cleanupDaemonFiles());

const root = packageRoot();
const rulesFile = join(root, 'examples', 'prometheus-alerts.yml');
const has = (cmd: string): boolean => spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;

// Why: this test exists to prove the integration; in CI a host without the server is a failure, not a skip.
function needsTool(t: TestContext, cmd: string): boolean {
  const ok = has(cmd);
  if (!ok && process.env.CI === 'true') throw new Error(`required for CI but missing on this host: ${cmd} (Debian package prometheus; scripts/setup-host.sh installs it)`);
  return needs(t, ok, `${cmd} (Debian package prometheus)`);
}

/** Metric names an expression refers to (histogram series by their base name). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(sentinel_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
}

test('promtool check rules passes the shipped alert rules and fails a broken copy; every rule names real metrics', (t) => {
  if (needsTool(t, 'promtool')) return;
  const ok = spawnSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8' });
  assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
  assert.match(ok.stdout, /SUCCESS: \d+ rules found/);
  const text = readFileSync(rulesFile, 'utf8');
  const exprs = [...text.matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
  for (const want of ['sentinel_vault_intact', 'sentinel_target_up', 'sentinel_target_restarts_total', 'sentinel_watchdog_healthy', 'sentinel_tampers_total']) {
    assert.ok(exprs.some((e) => e.includes(want)), `an alert on ${want}`);
  }
  for (const name of exprs.flatMap(metricNames)) assert.ok(SENTINEL_METRICS.includes(name), `${name} in the alert rules is a metric the daemon exposes`);
  const broken = join(tempDir('metrics-rules'), 'broken.yml');
  writeFileSync(broken, text.replace('sentinel_vault_intact == 0', 'sentinel_vault_intact == == 0'));
  const bad = spawnSync('promtool', ['check', 'rules', broken], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0, 'a broken expression fails the check');
});

test('the Grafana dashboard parses, has a Prometheus datasource variable, and names only metrics the daemon exposes', () => {
  const dash = JSON.parse(readFileSync(join(root, 'examples', 'grafana-dashboard.json'), 'utf8')) as {
    templating: { list: { name: string; type: string; query: unknown }[] };
    panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
  };
  const variable = dash.templating.list.find((v) => v.type === 'datasource');
  assert.ok(variable !== undefined && variable.query === 'prometheus', 'a datasource variable of type prometheus');
  assert.ok(dash.panels.length >= 8);
  const used = new Set<string>();
  for (const p of dash.panels) {
    assert.equal(p.datasource.uid, `\${${variable.name}}`, `${p.title} uses the datasource variable`);
    assert.ok(p.targets.length > 0, `${p.title} has a query`);
    for (const q of p.targets) for (const n of metricNames(q.expr)) used.add(n);
  }
  for (const n of used) assert.ok(SENTINEL_METRICS.includes(n), `${n} in the dashboard is a metric the daemon exposes`);
  for (const n of ['sentinel_vault_intact', 'sentinel_tampers_total', 'sentinel_heals_total', 'sentinel_heal_duration_seconds', 'sentinel_target_up', 'sentinel_recovery_latency_seconds', 'sentinel_protection_state', 'sentinel_watchdog_healthy']) {
    assert.ok(used.has(n), `a panel shows ${n}`);
  }
});

interface QueryReply {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

test('a real Prometheus scrapes the daemon; after a tamper and its heal PromQL returns tampers >= 1, heals >= 1, intact == 1', { timeout: 180_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  if (needsTool(t, 'prometheus')) return;
  const listen = `127.0.0.1:${String(await freePort())}`;
  const d = await startTestDaemon('metrics-prom', { metrics: { listen }, limits: { flagAuditIntervalMs: 60_000, verifyIntervalMs: 600_000 } });
  t.after(() => d.handle.stop('test'));
  const dir = tempDir('prometheus');
  const web = `127.0.0.1:${String(await freePort())}`;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, ['global:', '  scrape_interval: 1s', '  evaluation_interval: 1s', 'rule_files:', `  - ${rulesFile}`, 'scrape_configs:', '  - job_name: omnimind-sentinel', '    static_configs:', `      - targets: ["${listen}"]`, ''].join('\n'));
  mkdirSync(join(dir, 'data'));
  const logFd = openSync(join(dir, 'prometheus.log'), 'w');
  const prom = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${web}`, '--storage.tsdb.retention.time=1h'], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((r) => prom.once('exit', () => r()));
  t.after(async () => {
    prom.kill('SIGKILL');
    await exited;
  });
  const log = (): string => readFileSync(join(dir, 'prometheus.log'), 'utf8').slice(-3000);
  const query = async (q: string): Promise<QueryReply['data']['result']> => {
    const r = await httpGet(web, `/api/v1/query?query=${encodeURIComponent(q)}`);
    assert.equal(r.status, 200, r.body);
    const reply = JSON.parse(r.body) as QueryReply;
    assert.equal(reply.status, 'success');
    return reply.data.result;
  };
  const value = async (q: string): Promise<number | null> => {
    const result = await query(q);
    return result.length === 1 ? Number(result[0]!.value[1]) : null;
  };
  await waitFor(`prometheus ready at ${web}`, 60_000, async () => ((await httpGet(web, '/-/ready').catch(() => null))?.status === 200 ? true : null), 200).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${log()}`);
  });
  await waitFor('the daemon scraped (up == 1)', 30_000, async () => ((await value('up{job="omnimind-sentinel"}')) === 1 ? true : null), 250).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${log()}`);
  });
  assert.equal(await value(`sentinel_tampers_total{vault="${d.tv.path}"}`), 0, 'no tamper yet');

  const engine = join(d.tv.path, 'current', 'tree', 'phi', 'engine.py');
  assert.equal(spawnSync('chattr', ['-i', engine]).status, 0);
  writeFileSync(engine, 'def phi(x):\n    return 42\n');
  await waitFor('heal seen by PromQL', 30_000, async () => ((await value('sentinel_heals_total{job="omnimind-sentinel"}')) ?? 0) >= 1 ? true : null, 250);
  // The heal's scrape carries the tamper too and an intact vault: read back the values the brief promises.
  const tampers = await value('sentinel_tampers_total{job="omnimind-sentinel"}');
  const heals = await value('sentinel_heals_total{job="omnimind-sentinel"}');
  const intact = await value('sentinel_vault_intact{job="omnimind-sentinel"}');
  t.diagnostic(`PromQL: tampers ${String(tampers)}, heals ${String(heals)}, intact ${String(intact)}`);
  assert.ok(tampers !== null && tampers >= 1, `tampers_total ${String(tampers)}`);
  assert.ok(heals !== null && heals >= 1, `heals in PromQL: ${String(heals)}`);
  assert.equal(intact, 1);
  assert.equal(await value('sum(increase(sentinel_tampers_total[1m])) > 0') === null, false, 'the alert expression sees the tamper');
  assert.equal(await value('histogram_quantile(0.5, sum by (le) (sentinel_heal_duration_seconds_bucket)) > 0') === null, false, 'the heal duration is in the histogram');

  // The shipped alert rules are loaded by this server and evaluated.
  const rules = JSON.parse((await httpGet(web, '/api/v1/rules')).body) as { data: { groups: { name: string; rules: { name: string; health: string }[] }[] } };
  const group = rules.data.groups.find((g) => g.name === 'omnimind-sentinel');
  assert.ok(group !== undefined && group.rules.length >= 5, JSON.stringify(rules).slice(0, 500));
});
