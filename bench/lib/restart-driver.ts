// The restart benchmark inside the container (bench/backend-restart.ts boots it): a real systemd
// with the units as `sentinel install-units --sample-backend` installed them. For each scenario it
// applies the scenario's drop-ins and sentinel configuration, starts the load client, SIGKILLs the
// backend's MainPID `kills` times (each once the previous recovery is over), and records per kill
// what systemd says of the new process (exec and READY=1 on CLOCK_MONOTONIC). Writes
// /out/result.json, the load clients write /out/load-NAME.json; then it powers the container off.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { sendRequest } from '../../src/adapters/control-client.js';

const BACKEND = 'omnimind-backend.service';
const SOCKET_UNIT = 'omnimind-backend.socket';
const SENTINEL = 'omnimind-sentinel.service';
const CONTROL = '/run/omnimind-sentinel/sentinel.sock';
const ROOT = process.env.SENTINEL_ROOT ?? '/opt/omnimind-sentinel';
const KILLS = Number(process.env.BENCH_KILLS ?? '20');
const RATE = Number(process.env.BENCH_RATE ?? '250');
/** Kill-to-kill at least this long: systemd's default start limit is 5 starts in 10 s. */
const SPACING_MS = Number(process.env.BENCH_SPACING_MS ?? '4000');
/** The scenarios to run, in this order (the order matters: the VM's load drifts over a run). */
const ONLY = [...new Set((process.env.BENCH_SCENARIOS ?? 'a,b,c,e,d').split(','))];
const t0 = Date.now();

export interface Scenario {
  name: string;
  what: string;
  sentinel: boolean;
  /** (d): no kills; cold starts of the stopped units instead. */
  coldStart?: boolean;
  /** Drop-in text for the backend service and for its socket (null: the unit as installed). */
  service: string | null;
  socket: string | null;
}

export interface KillRecord {
  /** The kill; in (d) the `systemctl start` of the stopped units instead. */
  killUs: number;
  /** The kill on the wall clock, ms (to place the sentinel's log lines, which carry wall-clock times). */
  killWallMs: number;
  pid: number;
  newPid: number;
  execUs: number;
  readyUs: number;
  nRestartsBefore: number;
  nRestartsAfter: number;
  /** systemd handled the main process's exit ("Main process exited" in the journal; 0 when not found). */
  exitSeenUs: number;
  /** The unit entered failed/inactive (after ExecStopPost=): InactiveEnterTimestampMonotonic. */
  inactiveEnterUs: number;
  /** The start job began (activating): InactiveExitTimestampMonotonic. */
  inactiveExitUs: number;
}

export interface ScenarioResult {
  name: string;
  what: string;
  kills: KillRecord[];
  exitVia: string[];
  /** The sentinel's own lines about the backend's exits and restarts: [wall ms, pid or 0, message]. */
  sentinelLog: [number, number, string][];
  error?: string;
}

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
];

const note = (msg: string): void => appendFileSync('/out/progress.txt', `${((Date.now() - t0) / 1000).toFixed(2)}s ${msg}\n`);
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

function show(unit: string): Record<string, string> {
  const out = execFileSync('systemctl', ['show', unit, '-p', 'ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic,InactiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function until<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== null) return v;
    await pause(everyMs);
  }
  throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
}

function healthy(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: 8000, path: '/health', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function sentinelTarget(): Promise<{ pid: number | null; state: string; restarts: number } | undefined> {
  const st = (await sendRequest(CONTROL, { op: 'status' }, { timeoutMs: 10_000 }).catch(() => null)) as { result?: { components?: { targets?: { pid: number | null; state: string; restarts: number }[] } } } | null;
  return st?.result?.components?.targets?.[0];
}

async function sentinelCountsRunning(): Promise<void> {
  await until('the sentinel counting the backend running on its MainPID', 60_000, 100, async () => {
    const t = await sentinelTarget();
    return t !== undefined && t.state === 'running' && t.pid === Number(show(BACKEND).MainPID) ? true : null;
  });
}

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

function prepare(s: Scenario): void {
  spawnSync('systemctl', ['stop', BACKEND, SOCKET_UNIT, SENTINEL]);
  spawnSync('systemctl', ['reset-failed', BACKEND, SOCKET_UNIT, SENTINEL]);
  dropIn(BACKEND, s.service);
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

// Why: a scenario of the units as installed measures the held socket only if PID 1 holds port 8000;
// a backend that bound it itself (a unit left from another scenario) would make it a second (b).
function assertSocketHeld(s: Scenario, where: string): void {
  if (s.socket !== null) return;
  const r = spawnSync('ss', ['-ltnpH', 'sport = :8000'], { encoding: 'utf8' });
  const owners = (r.stdout ?? '').trim();
  if (!/pid=1,/.test(owners)) throw new Error(`${s.name}: port 8000 is not held by ${SOCKET_UNIT} (PID 1) ${where}: ${owners === '' ? 'nothing listens' : owners}`);
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
      if (s.coldStart === true) {
        // The units as installed, stopped: the load is refused meanwhile (not counted: this peer measures the start).
        execFileSync('systemctl', ['stop', BACKEND, SOCKET_UNIT], { timeout: 60_000 });
        if (s.sentinel) await until('the sentinel seeing the backend stopped', 30_000, 50, async () => ((await sentinelTarget())?.state === 'down' ? true : null));
        await pause(1000);
      }
      const before = show(BACKEND);
      const pid = Number(before.MainPID);
      const killUs = monoUs();
      const killWallMs = Date.now();
      if (s.coldStart === true) execFileSync('systemctl', ['start', '--no-block', SOCKET_UNIT, BACKEND]);
      else process.kill(pid, 'SIGKILL');
      const after = await until(`backend back after kill ${String(i + 1)}`, 60_000, 100, () => {
        const x = show(BACKEND);
        return x.ActiveState === 'active' && Number(x.MainPID) > 0 && Number(x.MainPID) !== pid ? x : null;
      });
      if (s.sentinel) await sentinelCountsRunning();
      assertSocketHeld(s, `after kill ${String(i + 1)}`);
      result.kills.push({
        killUs,
        killWallMs,
        pid,
        newPid: Number(after.MainPID),
        execUs: Number(after.ExecMainStartTimestampMonotonic),
        readyUs: Number(after.ActiveEnterTimestampMonotonic),
        nRestartsBefore: Number(before.NRestarts),
        nRestartsAfter: Number(after.NRestarts),
        exitSeenUs: 0,
        inactiveEnterUs: Number(after.InactiveEnterTimestampMonotonic),
        inactiveExitUs: Number(after.InactiveExitTimestampMonotonic),
      });
      note(`${s.name}: kill ${String(i + 1)} pid ${String(pid)} → ${after.MainPID}`);
      await pause(Math.max(500, killUs / 1000 + SPACING_MS - monoUs() / 1000));
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
  for (const k of result.kills) k.exitSeenUs = exits.find((us) => us >= k.killUs && us <= k.execUs) ?? 0;
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
