// The restart benchmark's steps inside the container (restart-driver.ts runs them): systemd's view
// of the backend, the sentinel's, and one measured kill or cold start with systemd's timestamps of
// the new process (CLOCK_MONOTONIC, µs).
import { appendFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { get } from 'node:http';
import { sendRequest } from '../../src/adapters/control-client.js';

export const BACKEND = 'omnimind-backend.service';
export const SOCKET_UNIT = 'omnimind-backend.socket';
const CONTROL_SOCKET = '/run/omnimind-sentinel/sentinel.sock';
const t0 = Date.now();

export interface Scenario {
  name: string;
  what: string;
  sentinel: boolean;
  /** (d): no kills; cold starts of the stopped units instead. */
  coldStart?: boolean;
  /** (cd): (c) and (d) alternating, a kill then a cold start, on the units as installed. */
  paired?: boolean;
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
  /** A cold or held start: when its `systemctl stop` began (a cold start's load is refused from then on). */
  stopUs?: number;
  /** With --probe: what the new process's probe wrote (bench/lib/restart-probe.py). */
  probe?: ProbeMarks;
}

/** A step of the new process: [CLOCK_MONOTONIC µs, user CPU µs, system CPU µs, connections in the accept queue, CPU µs, run-queue wait µs] (the last two from the scheduler). */
export type ProbeMark = [number, number, number, number, number, number];

/** restart-probe.py's line: the interpreter's start done, READY=1, the first accept(), the first reply bytes sent. */
export interface ProbeMarks {
  pid: number;
  /** CPU and run-queue wait at exec (the drop-in's shell): systemd's set-up of the process since its fork. */
  exec?: ProbeMark;
  probe: ProbeMark;
  imported?: ProbeMark;
  app?: ProbeMark;
  startup?: ProbeMark;
  ready?: ProbeMark;
  accept?: ProbeMark;
  reply?: ProbeMark;
  /** Connections accepted and bytes read before the first reply. */
  accepted?: number;
  recvBytes?: number;
}

/**
 * How a measurement brings the new process: `kill` (SIGKILL of MainPID, the sentinel restarts it), `cold`
 * (socket and service stopped, then both started), `held` (the service alone stopped while the socket keeps
 * port 8000: systemd's socket activation starts it again as soon as it is stopped, since connections are
 * waiting; the backend's own start serving a held queue, measured from the start job's beginning).
 */
export type Mode = 'kill' | 'cold' | 'held';

export interface ScenarioResult {
  name: string;
  what: string;
  kills: KillRecord[];
  /** (cd): the cold starts and the held starts, one of each after each kill of `kills`. */
  cold?: KillRecord[];
  held?: KillRecord[];
  exitVia: string[];
  /** The sentinel's own lines about the backend's exits and restarts: [wall ms, pid or 0, message]. */
  sentinelLog: [number, number, string][];
  error?: string;
}

export const note = (msg: string): void => appendFileSync('/out/progress.txt', `${((Date.now() - t0) / 1000).toFixed(2)}s ${msg}\n`);
export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

export function show(unit: string): Record<string, string> {
  const out = execFileSync('systemctl', ['show', unit, '-p', 'ActiveState,SubState,MainPID,NRestarts,ExecMainStartTimestampMonotonic,ActiveEnterTimestampMonotonic,InactiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

export async function until<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | null> | T | null): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== null) return v;
    await pause(everyMs);
  }
  throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
}

export function healthy(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: 8000, path: '/health', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The PID the backend's /health names (0 when refused, failed or timed out). */
function healthPid(timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: 8000, path: '/health', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? Number((JSON.parse(body) as { pid?: number }).pid ?? 0) : 0);
        } catch {
          resolve(0);
        }
      });
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

// Why: the driver stays out of the new process's start (a `systemctl show` per 100 ms poll is a process,
// and a call PID 1 serves, in the window measured). No start is shorter than 200 ms; then one GET /health
// waits in the held socket's backlog until a new process answers it (refused without the socket: tried
// again 100 ms later), and only then is systemd asked, so its processes run after the first reply.
async function newProcessAnswers(oldPid: number, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  await pause(200);
  while (Date.now() < end) {
    const pid = await healthPid(Math.max(1, end - Date.now()));
    if (pid > 0 && pid !== oldPid) return;
    await pause(100);
  }
  throw new Error(`timed out after 60000 ms waiting for a new process to answer after ${what}`);
}

export async function sentinelTarget(): Promise<{ pid: number | null; state: string; restarts: number } | undefined> {
  const st = (await sendRequest(CONTROL_SOCKET, { op: 'status' }, { timeoutMs: 10_000 }).catch(() => null)) as { result?: { components?: { targets?: { pid: number | null; state: string; restarts: number }[] } } } | null;
  return st?.result?.components?.targets?.[0];
}

export async function sentinelCountsRunning(): Promise<void> {
  await until('the sentinel counting the backend running on its MainPID', 60_000, 100, async () => {
    const t = await sentinelTarget();
    return t !== undefined && t.state === 'running' && t.pid === Number(show(BACKEND).MainPID) ? true : null;
  });
}

// Why: a scenario of the units as installed measures the held socket only if PID 1 holds port 8000;
// a backend that bound it itself (a unit left from another scenario) would make it a second (b).
export function assertSocketHeld(s: Scenario, where: string): void {
  if (s.socket !== null) return;
  const r = spawnSync('ss', ['-ltnpH', 'sport = :8000'], { encoding: 'utf8' });
  const owners = (r.stdout ?? '').trim();
  if (!/pid=1,/.test(owners)) throw new Error(`${s.name}: port 8000 is not held by ${SOCKET_UNIT} (PID 1) ${where}: ${owners === '' ? 'nothing listens' : owners}`);
}

// One kill of the backend's MainPID, or a cold start (a stop of the units as installed, then their
// `systemctl start`), or a held start (a stop of the service alone; the socket starts it again),
// measured until systemd has the new process active and the sentinel counts it.
export async function measureOnce(s: Scenario, i: number, mode: Mode): Promise<KillRecord> {
  let stopUs: number | undefined;
  const what = mode === 'kill' ? 'kill' : `${mode} start`;
  if (mode === 'cold') {
    // The units as installed, stopped: the load is refused meanwhile (not counted: this peer measures the start).
    stopUs = monoUs();
    execFileSync('systemctl', ['stop', BACKEND, SOCKET_UNIT], { timeout: 60_000 });
    if (s.sentinel) await until('the sentinel seeing the backend stopped', 30_000, 50, async () => ((await sentinelTarget())?.state === 'down' ? true : null));
    await pause(1000);
  }
  const before = show(BACKEND);
  const pid = Number(before.MainPID);
  const killUs = monoUs();
  const killWallMs = Date.now();
  if (mode === 'cold') execFileSync('systemctl', ['start', '--no-block', SOCKET_UNIT, BACKEND]);
  else if (mode === 'held') {
    stopUs = killUs;
    execFileSync('systemctl', ['stop', '--no-block', BACKEND]);
  } else process.kill(pid, 'SIGKILL');
  await newProcessAnswers(pid, `${what} ${String(i + 1)}`);
  const after = await until(`backend back after ${what} ${String(i + 1)}`, 60_000, 100, () => {
    const x = show(BACKEND);
    return x.ActiveState === 'active' && Number(x.MainPID) > 0 && Number(x.MainPID) !== pid ? x : null;
  });
  // a held start is measured from its start job's beginning (the socket's, once the stop is done)
  const startUs = mode === 'held' ? Number(after.InactiveExitTimestampMonotonic) : killUs;
  if (Number(after.ExecMainStartTimestampMonotonic) < killUs) throw new Error(`${s.name}: ${what} ${String(i + 1)}: the new process was started before the measurement began (by whom?)`);
  if (s.sentinel) await sentinelCountsRunning();
  assertSocketHeld(s, `after ${what} ${String(i + 1)}`);
  note(`${s.name}: ${what} ${String(i + 1)} pid ${String(pid)} → ${after.MainPID}`);
  return {
    killUs: startUs,
    killWallMs: killWallMs + (startUs - killUs) / 1000,
    pid,
    newPid: Number(after.MainPID),
    execUs: Number(after.ExecMainStartTimestampMonotonic),
    readyUs: Number(after.ActiveEnterTimestampMonotonic),
    nRestartsBefore: Number(before.NRestarts),
    nRestartsAfter: Number(after.NRestarts),
    exitSeenUs: 0,
    inactiveEnterUs: Number(after.InactiveEnterTimestampMonotonic),
    inactiveExitUs: Number(after.InactiveExitTimestampMonotonic),
    ...(stopUs === undefined ? {} : { stopUs }),
  };
}
