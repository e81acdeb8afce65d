// Requests lost while the backend restarts, under a real systemd (systemd-nspawn over this host's /,
// the checkout bound at /opt/omnimind-sentinel: the units have PrivateTmp=) with the units as
// `sentinel install-units --sample-backend` installs them. Under an open-loop load of --rate
// requests/s (GET /health, a new connection each), the backend's MainPID is SIGKILLed --kills times,
// each once the previous recovery is over, for three peers measured in the same run:
//   (a) systemd alone, Restart=always with RestartSec=100ms, the backend binding port 8000 itself;
//   (b) the sentinel's unit target (exit seen → systemctl restart at once), no socket;
//   (c) the sentinel, port 8000 held by omnimind-backend.socket (the units exactly as installed);
//   (d) the peer of the gap: the backend's own cold start as installed (socket and service stopped,
//       then `systemctl start`), under the same load, --kills times;
//   (e) (c) with the ExecStopPost= hook the unit had until 2026-12-06 (a drop-in): what taking it off saved;
//   (h) the backend's own start serving a restart's queue: the service stopped with the socket still
//       holding port 8000, then started so that the queue is as old at its exec as at the kill's (paired only);
//   (cd) (c), (d) and (h) in turns, kill by kill (`--scenarios cd`, or `--paired`): each restart has a cold
//       start and a held start as its neighbours under the same conditions; the differences are reported per pair.
// --probe runs the backend under bench/lib/restart-probe.py: per new process its CPU to READY=1, the accept
// queue it met, and what it accepted and read before its first reply.
// Counts failed requests (refused, reset, 5xx, timeouts; in flight at the kill apart from the rest;
// and what a client retrying a reset GET once still sees) and the gap (kill → first good reply of the
// new process) against the backend's own start time; splits kill → exec by systemd's timestamps.
// Usage (root, systemd-nspawn, node under /usr):
//   node dist/bench/backend-restart.js [--kills 20] [--rate 250] [--scenarios a,b,c,e,d | --paired] [--probe] [--json FILE] [--keep]
// (--scenarios: which peers, run in the order given)
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootContainer } from '../test/helpers/nspawn.js';
import { packageRoot } from '../src/adapters/package-root.js';
import { loadNative } from '../src/adapters/native.js';
import { analyse, type ScenarioFigures, type Stats } from './lib/restart-analysis.js';
import { analysePairs, outsideColdWindows, pairTable, perKillLine, type PairFigures } from './lib/restart-pairs.js';
import { probeTable } from './lib/restart-probe-figures.js';
import type { ScenarioResult } from './lib/restart-driver.js';
import type { LoadRecord } from './lib/restart-load.js';
import { stringArg } from './lib/args.js';

const GUEST_ROOT = '/opt/omnimind-sentinel';
const root = packageRoot();
const cliPath = join(root, 'dist', 'src', 'cli', 'main.js');
const fixtures = join(root, 'test', 'fixtures', 'nspawn');

const kills = Number(stringArg('kills', '20'));
const rate = Number(stringArg('rate', '250'));
const scenarios = process.argv.includes('--paired') ? 'cd' : stringArg('scenarios', 'a,b,c,e,d');
const jsonOut = stringArg('json', '');
const keep = process.argv.includes('--keep');
const probe = process.argv.includes('--probe');

function cli(args: string[]): string {
  return execFileSync(process.execPath, [cliPath, ...args], { encoding: 'utf8' });
}

const DRIVER_UNIT = `[Unit]
Description=restart benchmark: drives the scenarios, writes /out, powers off
After=backend-e2e-setup.service
Requires=backend-e2e-setup.service

[Service]
Type=exec
EnvironmentFile=/etc/sentinel-e2e/env
ExecStart=/usr/bin/node \${SENTINEL_ROOT}/dist/bench/lib/restart-driver.js
StandardOutput=journal+console
StandardError=journal+console
`;

async function prepare(dir: string): Promise<string[]> {
  const keys = join(dir, 'keys');
  const e2e = join(dir, 'e2e');
  const out = join(dir, 'out');
  const src = join(dir, 'src');
  for (const d of [keys, e2e, out, join(src, 'engine')]) await mkdir(d, { recursive: true });
  cli(['keygen', '--out', join(dir, 'release')]);
  await copyFile(join(dir, 'release.pub'), join(keys, 'release.pub'));
  await writeFile(join(src, 'engine', 'phi.py'), 'phi = 1\n');
  await writeFile(join(src, 'engine', 'weights.bin'), Buffer.alloc(256 * 1024, 7));
  cli(['sign', src, '--key', join(dir, 'release.key'), '--vault-id', 'e2e-vault', '--version', '1', '--out', join(e2e, 'v1.bundle')]);
  await copyFile(join(fixtures, 'backend-setup.sh'), join(e2e, 'backend-setup.sh'));
  await writeFile(join(e2e, 'env'), [`SENTINEL_ROOT=${GUEST_ROOT}`, `BENCH_KILLS=${String(kills)}`, `BENCH_RATE=${String(rate)}`, `BENCH_SCENARIOS=${scenarios}`, `BENCH_PROBE=${probe ? '1' : '0'}`, ''].join('\n'));
  await writeFile(join(dir, 'restart-bench.service'), DRIVER_UNIT);
  // Without the native addon sd_notify goes through systemd-notify (another PID): only NotifyAccess=all accepts it.
  await writeFile(join(dir, 'sentinel-notify.conf'), loadNative() === null ? '[Service]\nNotifyAccess=all\n' : '[Service]\n');
  return [
    `--bind-ro=${root}:${GUEST_ROOT}`,
    `--bind-ro=${keys}:/etc/omnimind-sentinel/keys`,
    `--bind-ro=${e2e}:/etc/sentinel-e2e`,
    `--bind=${out}:/out`,
    `--bind-ro=${join(dir, 'sentinel-notify.conf')}:/etc/systemd/system/omnimind-sentinel.service.d/e2e-notify.conf`,
    `--bind-ro=${join(fixtures, 'backend-e2e-setup.service')}:/etc/systemd/system/backend-e2e-setup.service`,
    `--bind-ro=${join(dir, 'restart-bench.service')}:/etc/systemd/system/restart-bench.service`,
    // eBPF for the sentinel's exit detection inside the container.
    '--capability=all',
    '--system-call-filter=bpf perf_event_open',
    '--bind-ro=/sys/kernel/btf',
  ];
}

const f1 = (s: Stats): string => `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;

function table(rows: { s: ScenarioResult; f: ScenarioFigures }[]): string {
  const lines = [
    '| scenario | kills | requests (req/s) | failed | in flight at the kill | sent after the kill | failed with one retry of a reset GET (in flight / after) | gap kill → first good reply, ms median (min–max) | kill → exec ms | exec → READY=1 ms | exec → first reply ms | restarted by systemd\'s Restart= | exit seen via |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { s, f } of rows) {
    const cold = s.name === 'd' || s.name === 'h';
    const failed = cold ? '— (units stopped)' : f.failedTotal === 0 ? '**0**' : `**${String(f.failedTotal)}** (${Object.entries(f.failed).map(([k, v]) => `${k} ${String(v)}`).join(', ')})`;
    const retry = cold ? '—' : `${String(f.failedWithRetry)} (${String(f.inFlightWithRetry)} / ${String(f.afterKillWithRetry)}; ${String(f.retriedOk)} of ${String(f.retried)} retries answered)`;
    const via = s.exitVia.length === 0 ? '—' : [...new Set(s.exitVia)].map((v) => `${v} ×${String(s.exitVia.filter((x) => x === v).length)}`).join(', ');
    lines.push(`| (${s.name}) ${s.what} | ${String(f.kills)} | ${String(f.requests)} (${f.rate.toFixed(0)}) | ${failed} | ${cold ? '—' : String(f.inFlight)} | ${cold ? '—' : String(f.afterKill)} | ${retry} | ${f1(f.gapMs)} | ${f1(f.killToExecMs)} | ${f1(f.execToReadyMs)} | ${f1(f.execToReplyMs)} | ${cold ? '—' : String(f.restartedBySystemd)} | ${via} |`);
  }
  lines.push('', 'systemd\'s part, from its journal ("Main process exited") and the unit\'s timestamps (InactiveEnter, InactiveExit, ExecMainStart); in (d) "kill" is the `systemctl start`:', '');
  lines.push('| scenario | kill → exit handled by systemd | → unit failed (stop done) | → start job began | start job → exec | kill → start job began | start job began → first good reply |', '|---|---|---|---|---|---|---|');
  for (const { s, f } of rows) lines.push(`| (${s.name}) | ${f1(f.killToReapedMs)} | ${f1(f.reapedToInactiveMs)} | ${f1(f.inactiveToStartMs)} | ${f1(f.startToExecMs)} | ${f1(f.killToStartMs)} | ${f1(f.startToReplyMs)} |`);
  const sentinel = rows.filter((r) => r.f.killToSeenMs.median >= 0);
  if (sentinel.length > 0) {
    lines.push('', '| scenario | kill → exit seen ms | exit seen → restart action ms | action → exec ms |', '|---|---|---|---|');
    for (const { s, f } of sentinel) lines.push(`| (${s.name}) | ${f1(f.killToSeenMs)} | ${f1(f.seenToActionMs)} | ${f1(f.actionToExecMs)} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) return fail('needs root');
  if (spawnSync('systemd-nspawn', ['--version']).status !== 0) return fail('needs systemd-nspawn (apt-get install systemd-container)');
  if (!process.execPath.startsWith('/usr/')) return fail(`needs node under /usr (a volatile container sees only the host's /usr; it is ${process.execPath})`);
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-restart-bench-'));
  try {
    const args = await prepare(dir);
    const load0 = loadavg()[0]!;
    const boot = await bootContainer({ timeoutMs: 180_000 + kills * 3 * 6_000, args, wants: ['backend-e2e-setup.service', 'restart-bench.service'] });
    const out = join(dir, 'out');
    const progress = await readFile(join(out, 'progress.txt'), 'utf8').catch(() => '');
    if (boot.timedOut) return fail(`container did not power off in time; progress:\n${progress}\nconsole tail:\n${boot.console.slice(-3000)}`);
    const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8').catch(() => 'null')) as { ok: boolean; scenarios: ScenarioResult[]; errors: string[]; tracefs: boolean; btf?: boolean; journal?: string[]; detection?: string[] } | null;
    if (result === null) return fail(`no result.json; progress:\n${progress}\nconsole tail:\n${boot.console.slice(-3000)}`);
    const rows: { s: ScenarioResult; f: ScenarioFigures }[] = [];
    const perKill: string[] = [];
    const paired: PairFigures[] = [];
    const probed: { name: string; starts: ScenarioResult['kills'] }[] = [];
    let pairedKills: ScenarioResult['kills'] = [];
    for (const s of result.scenarios) {
      const load = JSON.parse(await readFile(join(out, `load-${s.name}.json`), 'utf8')) as { records: LoadRecord[] };
      if (s.error !== undefined) console.error(`scenario ${s.name} stopped early: ${s.error}`);
      if (s.cold === undefined) {
        rows.push({ s, f: analyse(s.kills, load.records, s.sentinelLog) });
        perKill.push(perKillLine(s.name, s.kills, load.records));
        probed.push({ name: s.name, starts: s.kills });
        continue;
      }
      // (cd): the kills as (c), the cold starts as (d), the held starts as (h), from the one load; a cold
      // start's stopped units and a held start's stop are not the restart's failures
      const held = s.held ?? [];
      const d = analyse(s.cold, load.records);
      // the kills' requests are those outside the peers' windows; the rate is the whole load's
      rows.push({ s: { ...s, name: 'c', what: `${s.what}: the kills` }, f: { ...analyse(s.kills, outsideColdWindows(load.records, s.kills, [...s.cold, ...held]), s.sentinelLog), rate: d.rate } });
      rows.push({ s: { ...s, name: 'd', what: `${s.what}: the cold starts`, kills: s.cold, exitVia: [] }, f: d });
      if (held.length > 0) rows.push({ s: { ...s, name: 'h', what: `${s.what}: the held starts`, kills: held, exitVia: [] }, f: analyse(held, load.records) });
      paired.push(analysePairs('d', s.kills, s.cold, load.records));
      if (held.length > 0) paired.push(analysePairs('h', s.kills, held, load.records));
      probed.push({ name: 'c', starts: s.kills }, { name: 'd', starts: s.cold }, ...(held.length > 0 ? [{ name: 'h', starts: held }] : []));
      pairedKills = s.kills;
    }
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, kernel ${release()}, node ${process.version}; load average ${load0.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; ${String(rate)} req/s asked\n`);
    console.log(table(rows));
    for (const p of paired) console.log(`\n${pairTable(p)}`);
    if (probe) console.log(`\n${probeTable(probed, pairedKills)}`);
    if (perKill.length > 0) console.log(`\n${perKill.join('\n')}`);
    console.log(`\ncontainer: tracefs ${String(result.tracefs)}, /sys/kernel/btf/vmlinux ${String(result.btf)}; sentinel exit detection: ${(result.detection ?? []).slice(0, 3).join(' / ') || 'no line about it'}`);
    const c = rows.find((r) => r.s.name === 'c')?.f;
    const d = rows.find((r) => r.s.name === 'd')?.f;
    if (c !== undefined) {
      console.log(`\n(c) held socket: ${String(c.failedTotal)} failed over ${String(c.kills)} kills (goal 0: ${c.failedTotal === 0 ? 'met' : 'NOT met'}; ${String(c.afterKill)} of them sent after the kill, ${String(c.inFlight)} in flight in the killed process); with one retry of a reset GET: ${String(c.failedWithRetry)}`);
      if (d !== undefined) {
        const x = c.gapMs.median - d.gapMs.median;
        const e = rows.find((r) => r.s.name === 'e')?.f;
        if (e !== undefined) console.log(`gap (e), with the former stop hook, ${e.gapMs.median.toFixed(1)} ms = (d) + ${(e.gapMs.median - d.gapMs.median).toFixed(1)} ms; unit failed after systemd handled the exit: (c) ${c.reapedToInactiveMs.median.toFixed(1)} ms, (e) ${e.reapedToInactiveMs.median.toFixed(1)} ms`);
        console.log(`gap (c) ${c.gapMs.median.toFixed(1)} ms = the backend's own start as systemd starts it ((d): systemctl start → first good reply, ${d.gapMs.median.toFixed(1)} ms) + X = ${x.toFixed(1)} ms (medians; goal X ≤ 5 ms: ${x <= 5 ? 'met' : 'NOT met'})`);
        for (const p of paired) console.log(`paired against (${p.peer}): X per pair, median ${p.gapDiff.median.toFixed(1)} ms (p25 to p75: ${p.gapDiff.p25.toFixed(1)} to ${p.gapDiff.p75.toFixed(1)}; 95 % interval of the median ${p.gapDiff.ciLow.toFixed(1)} to ${p.gapDiff.ciHigh.toFixed(1)}; goal ≤ 5 ms: ${p.gapDiff.median <= 5 ? 'met' : 'NOT met'}); kill → exec minus start → exec ${p.toExecDiff.median.toFixed(1)} ms`);
      }
    }
    for (const r of rows) {
      if (r.f.gapMs.median > 0 && c !== undefined && r.s.name !== 'c') console.log(`(${r.s.name}) gap / (c) gap = ${(r.f.gapMs.median / c.gapMs.median).toFixed(2)}`);
    }
    if (!result.ok) console.error(`driver errors: ${result.errors.join('\n')}\n${(result.journal ?? []).slice(-60).join('\n')}`);
    if (jsonOut !== '') await writeFile(jsonOut, JSON.stringify({ rate, kills, rows: rows.map((r) => ({ ...r.f, name: r.s.name, what: r.s.what, exitVia: r.s.exitVia, perKill: r.s.kills })), paired }, null, 2));
    return result.ok ? 0 : 1;
  } finally {
    if (keep) console.error(`kept: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

function fail(why: string): number {
  console.error(`backend-restart: ${why}`);
  return 1;
}

process.exit(await main());
