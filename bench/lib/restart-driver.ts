// The restart benchmark inside the container (bench/backend-restart.ts boots it): a real systemd
// with the units as `sentinel install-units --sample-backend` installed them. For each scenario it
// applies the scenario's drop-ins and sentinel configuration, starts the load client, SIGKILLs the
// backend's MainPID `kills` times (each once the previous recovery is over), and records per kill
// what systemd says of the new process (exec and READY=1 on CLOCK_MONOTONIC); (cd) alternates a kill
// and a cold start of the same units, so each restart has a neighbour measured alike. Writes
// /out/result.json, the load clients write /out/load-NAME.json; then it powers the container off.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { BACKEND, SOCKET_UNIT, assertSocketHeld, healthy, measureOnce, monoUs, note, pause, sentinelCountsRunning, until, type KillRecord, type Mode, type ProbeMarks, type Scenario, type ScenarioResult } from './restart-steps.js';

export type { KillRecord, ProbeMark, ProbeMarks, Scenario, ScenarioResult } from './restart-steps.js';

const SENTINEL = 'omnimind-sentinel.service';
const CONTROL = '/run/omnimind-sentinel/sentinel.sock';
const ROOT = process.env.SENTINEL_ROOT ?? '/opt/omnimind-sentinel';
const KILLS = Number(process.env.BENCH_KILLS ?? '20');
const RATE = Number(process.env.BENCH_RATE ?? '250');
/** Kill-to-kill at least this long: systemd's default start limit is 5 starts in 10 s. */
const SPACING_MS = Number(process.env.BENCH_SPACING_MS ?? '4000');
/** The scenarios to run, in this order (the order matters: the VM's load drifts over a run). */
const ONLY = [...new Set((process.env.BENCH_SCENARIOS ?? 'a,b,c,e,d').split(','))];
/** Run the backend under bench/lib/restart-probe.py (its steps, CPU and accept queue in the journal). */
const PROBE = process.env.BENCH_PROBE === '1';

// (a) and (b): the backend binds 127.0.0.1:8000 itself (connections are refused while it is down);
// the socket unit, which the service Requires=, is moved out of the way to port 8099.
const OWN_PORT = `[Service]
ExecStart=
ExecStart=/usr/bin/env -u LISTEN_PID -u LISTEN_FDS -u LISTEN_FDNAMES /usr/bin/python3 -m omnimind_sentinel.serve sample_backend:app --app-dir ${ROOT}/examples/backend --no-access-log --host 127.0.0.1 --port 8000
`;
const SOCKET_ASIDE = '[Socket]\nListenStream=\nListenStream=127.0.0.1:8099\n';
// (e): the backend unit's ExecStopPost= hook as shipped until the sentinel recorded watchdog timeouts itself.
const FORMER_STOP_HOOK = 'ExecStopPost=-+/bin/sh -c \'test "$$SERVICE_RESULT" = watchdog || exit 0; exec /usr/bin/python3 -m omnimind_sentinel.graceful_restart --unit %n\'';
const SCENARIOS: Scenario[] = [
  { name: 'a', what: 'systemd alone: Restart=always, RestartSec=100ms, no socket, no sentinel', sentinel: false, service: `${OWN_PORT}RestartSec=100ms\n`, socket: SOCKET_ASIDE },
  { name: 'b', what: 'sentinel unit target (exit seen → systemctl restart), no socket', sentinel: true, service: OWN_PORT, socket: SOCKET_ASIDE },
  { name: 'c', what: 'sentinel unit target, port 8000 held by omnimind-backend.socket (units as installed)', sentinel: true, service: null, socket: null },
  { name: 'e', what: '(c) with the stop hook the unit had until 2026-12-06 (a drop-in): what taking it off saved', sentinel: true, service: `[Service]\n${FORMER_STOP_HOOK}\n`, socket: null },
  { name: 'd', what: 'the backend\'s own cold start as installed: socket and service stopped, then `systemctl start` (peer of the gap)', sentinel: true, service: null, socket: null, coldStart: true },
  { name: 'cd', what: '(c), (d) and (h) in turns, kill by kill: each restart has a cold start and a held start of the same units as its neighbours', sentinel: true, service: null, socket: null, paired: true },
];

function dropIn(unit: string, text: string | null): void {
  const dir = `/etc/systemd/system/${unit}.d`;
  const p = `${dir}/zz-bench.conf`;
  if (text === null) rmSync(p, { force: true });
  else {
    mkdirSync(dir, { recursive: true });
    writeFileSync(p, text);
  }
}

function sentinelConfig(): void {
  // Budget and back-off opened up so that 20 kills in about a minute are all recovered at once (the
  // defaults, 5 restarts per 60 s with a growing back-off, would fail the target by design).
  const config = {
    vault: { path: '/var/lib/omnimind/phi-engine', trust: ['/etc/omnimind-sentinel/keys/release.pub'], onTamper: 'heal' },
    control: { socket: CONTROL },
    audit: { path: '/var/log/omnimind-sentinel/audit.log' },
    log: { level: 'info' },
    targets: [{ name: 'backend', unit: BACKEND, port: 8000, budget: { burst: 1000, intervalMs: 60_000 }, backoff: { initialMs: 0, maxMs: 0 } }],
  };
  writeFileSync('/etc/omnimind-sentinel/sentinel.json', `${JSON.stringify(config, null, 2)}\n`);
}

// With --probe the backend runs under the probe (the same serve path; one journal line per process).
// The shell reads the process's CPU time at exec (systemd's set-up of it since the fork) and execs python3 (the same PID).
const PROBE_SH = `/bin/sh -c 'read cpu wait n < /proc/self/schedstat; export RESTART_PROBE_EXEC="$$cpu $$wait"; exec /usr/bin/python3 ${ROOT}/bench/lib/restart-probe.py "$$@"' sh`;
const PROBE_EXEC = `ExecStart=\nExecStart=${PROBE_SH} sample_backend:app --app-dir ${ROOT}/examples/backend --no-access-log\n`;
function serviceDropIn(s: Scenario): string | null {
  if (!PROBE) return s.service;
  if (s.service === null) return `[Service]\n${PROBE_EXEC}`;
  if (s.service.includes('/usr/bin/python3 -m omnimind_sentinel.serve')) return s.service.replace('/usr/bin/python3 -m omnimind_sentinel.serve', PROBE_SH);
  return `${s.service}${PROBE_EXEC}`;
}

function probeLines(since: string): Map<number, ProbeMarks> {
  const r = spawnSync('journalctl', ['-u', BACKEND, '--since', since, '-o', 'cat', '--no-pager'], { encoding: 'utf8' });
  const byPid = new Map<number, ProbeMarks>();
  for (const l of (r.stdout ?? '').split('\n')) {
    const at = l.indexOf('restart-probe {');
    if (at < 0) continue;
    try {
      const m = JSON.parse(l.slice(at + 'restart-probe '.length)) as ProbeMarks;
      byPid.set(m.pid, m);
    } catch {
      // a line cut by the journal
    }
  }
  return byPid;
}

function prepare(s: Scenario): void {
  spawnSync('systemctl', ['stop', BACKEND, SOCKET_UNIT, SENTINEL]);
  spawnSync('systemctl', ['reset-failed', BACKEND, SOCKET_UNIT, SENTINEL]);
  dropIn(BACKEND, serviceDropIn(s));
  dropIn(SOCKET_UNIT, s.socket);
  // The backend Wants= the sentinel: for "systemd alone" a condition that never holds keeps it from starting.
  dropIn(SENTINEL, s.sentinel ? null : '[Unit]\nConditionPathExists=/run/restart-bench/never\n');
  execFileSync('systemctl', ['daemon-reload']);
  execFileSync('systemctl', ['start', SOCKET_UNIT, BACKEND, ...(s.sentinel ? [SENTINEL] : [])], { timeout: 120_000 });
}

function sentinelLines(since: string): Record<string, unknown>[] {
  const r = spawnSync('journalctl', ['-u', SENTINEL, '--since', since, '-o', 'cat', '--no-pager'], { encoding: 'utf8' });
  const lines: Record<string, unknown>[] = [];
  for (const l of (r.stdout ?? '').split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not one of the daemon's JSON lines
    }
  }
  return lines.filter((l) => l.target === 'backend' && typeof l.time === 'string');
}

async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const result: ScenarioResult = { name: s.name, what: s.what, kills: [], exitVia: [], sentinelLog: [] };
  const since = new Date().toISOString().replace('T', ' ').slice(0, 19);
  prepare(s);
  if (s.sentinel) await sentinelCountsRunning();
  await until('the backend answering on port 8000', 30_000, 100, async () => ((await healthy()) ? true : null));
  note(`${s.name}: ready`);
  const load = spawn('/usr/bin/node', [`${ROOT}/dist/bench/lib/restart-load.js`, '--out', `/out/load-${s.name}.json`, '--rate', String(RATE)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const loadDone = new Promise<void>((r) => load.on('close', () => r()));
  try {
    assertSocketHeld(s, 'before the first kill');
    await pause(1500);
    for (let i = 0; i < KILLS; i++) {
      // each measurement at least SPACING_MS after the previous one began (systemd's start limit)
      const modes: Mode[] = s.paired === true ? ['kill', 'cold', 'held'] : [s.coldStart === true ? 'cold' : 'kill'];
      for (const mode of modes) {
        const k = await measureOnce(s, i, mode);
        if (s.paired !== true || mode === 'kill') result.kills.push(k);
        else if (mode === 'cold') (result.cold ??= []).push(k);
        else (result.held ??= []).push(k);
        await pause(Math.max(500, k.killUs / 1000 + SPACING_MS - monoUs() / 1000));
      }
    }
    await pause(1000);
  } catch (e) {
    result.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    load.kill('SIGTERM');
    await loadDone;
  }
  const journal = spawnSync('journalctl', ['-u', SENTINEL, '-u', BACKEND, '-u', SOCKET_UNIT, '--since', since, '-o', 'short-monotonic', '--no-pager'], { encoding: 'utf8' });
  writeFileSync(`/out/journal-${s.name}.txt`, journal.stdout ?? '');
  // When systemd handled each main process's exit, from its own journal line (CLOCK_MONOTONIC seconds).
  const exits = (journal.stdout ?? '').split('\n').map((l) => /^\[\s*(\d+\.\d+)\].*omnimind-backend\.service: Main process exited/.exec(l)).filter((m) => m !== null).map((m) => Math.round(Number(m[1]) * 1e6));
  const all: KillRecord[] = [...result.kills, ...(result.cold ?? []), ...(result.held ?? [])];
  for (const k of all) k.exitSeenUs = exits.find((us) => us >= k.killUs && us <= k.execUs) ?? 0;
  if (PROBE) {
    const probes = probeLines(since);
    for (const k of all) {
      const m = probes.get(k.newPid);
      if (m !== undefined) k.probe = m;
    }
  }
  if (s.sentinel) {
    const lines = sentinelLines(since);
    const killed = new Set(result.kills.map((k) => k.pid));
    result.exitVia = lines.filter((l) => l.msg === 'main process of target exited' && killed.has(Number(l.pid))).map((l) => String(l.via));
    result.sentinelLog = lines.map((l) => [Date.parse(String(l.time)), Number(l.pid ?? 0), String(l.msg)]);
  }
  return result;
}

async function main(): Promise<void> {
  const out: { ok: boolean; scenarios: ScenarioResult[]; errors: string[]; tracefs: boolean; btf?: boolean; journal?: string[]; detection?: string[] } = { ok: false, scenarios: [], errors: [], tracefs: false };
  try {
    // eBPF for the sentinel's exit detection (the container was booted with the syscalls and capabilities it needs).
    if (!existsSync('/sys/kernel/tracing/events')) spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
    out.tracefs = existsSync('/sys/kernel/tracing/events/sched');
    out.btf = existsSync('/sys/kernel/btf/vmlinux');
    sentinelConfig();
    for (const s of ONLY.map((n) => SCENARIOS.find((x) => x.name === n)).filter((x): x is Scenario => x !== undefined)) {
      note(`${s.name}: ${s.what}`);
      out.scenarios.push(await runScenario(s));
    }
    out.ok = out.scenarios.every((s) => s.error === undefined);
  } catch (e) {
    out.errors.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
  } finally {
    const j = spawnSync('journalctl', ['-u', SENTINEL, '-u', BACKEND, '-o', 'short-monotonic', '--no-pager'], { encoding: 'utf8' });
    out.journal = (j.stdout ?? '').split('\n').slice(-200);
    // How the sentinel sees exits (eBPF or the /proc poll) and why, from its start-up lines.
    out.detection = (j.stdout ?? '').split('\n').filter((l) => /omnimind-sentinel\[.*(bpf|tracer|exit detection|polling)/i.test(l)).slice(0, 20);
    writeFileSync('/out/result.json', JSON.stringify(out, null, 2));
    note(`poweroff; ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
    spawnSync('systemctl', ['poweroff', '--no-block']);
  }
}

await main();
