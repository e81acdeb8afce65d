// The figures of the restart benchmark from what the container recorded: every request of the load
// client and, per kill, systemd's timestamps of the new process (all on CLOCK_MONOTONIC, µs).
import type { LoadRecord } from './restart-load.js';
import type { KillRecord } from './restart-driver.js';

export interface Stats {
  median: number;
  max: number;
  min: number;
}

export interface ScenarioFigures {
  kills: number;
  requests: number;
  /** Requests sent per second over the whole run (the client is open-loop). */
  rate: number;
  ok: number;
  /** Failed requests by outcome (refused, reset, timeout, http-5xx, …). */
  failed: Record<string, number>;
  failedTotal: number;
  /** Of the failures after a kill: requests sent before the kill (in flight in the killed process). */
  inFlight: number;
  /** Of the failures after a kill: requests sent after it (refused, reset or timed out in the gap). */
  afterKill: number;
  /** Failures before the first kill (should be 0: the load itself is served). */
  beforeKills: number;
  /** Kill → first good reply from the new process, ms. */
  gapMs: Stats;
  /** Kill → exec of the new main process (detection, the restart job, ExecStopPost=, fork), ms: gap − exec→first reply, what the restart adds to the backend's own start. */
  killToExecMs: Stats;
  /** The backend's own start: exec → READY=1 (systemd's ActiveEnterTimestamp), ms. */
  execToReadyMs: Stats;
  /** The backend's own start as clients see it: exec → first good reply, ms. */
  execToReplyMs: Stats;
  /**
   * The sentinel's part of kill → exec, from its log lines (wall clock, ms resolution): kill → exit
   * seen, exit seen → restart action started (deciding whose exit it is), action started → exec
   * (the `systemctl restart` process, systemd's job, ExecStopPost=, fork). Empty without the sentinel.
   */
  killToSeenMs: Stats;
  seenToActionMs: Stats;
  actionToExecMs: Stats;
  /** Kills after which systemd's own Restart= ran (NRestarts went up) rather than a restart job. */
  restartedBySystemd: number;
  /** Failed requests that one retry (RFC 9110 §9.2.2: a GET reset before any response byte) did not save. */
  failedWithRetry: number;
  /** Of those: sent before the kill, and after it. */
  inFlightWithRetry: number;
  afterKillWithRetry: number;
  /** Requests retried once, and how many of the retries were answered. */
  retried: number;
  retriedOk: number;
  /**
   * systemd's part of kill → exec (its journal and unit timestamps): kill → it handled the main exit,
   * → the unit failed (ExecStopPost= ran), → the start job began (activating), → exec of the new process
   * (the unit's sandbox, DynamicUser, fork, exec).
   */
  killToReapedMs: Stats;
  reapedToInactiveMs: Stats;
  inactiveToStartMs: Stats;
  startToExecMs: Stats;
  /** Kill (or `systemctl start` in the cold-start peer) → the start job began. */
  killToStartMs: Stats;
  /** The start job began → first good reply: the backend's own start as systemd starts it. */
  startToReplyMs: Stats;
}

export function stats(xs: number[]): Stats {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, max: NaN, min: NaN };
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, max: s[s.length - 1]!, min: s[0]! };
}

export function analyse(kills: KillRecord[], records: LoadRecord[], sentinelLog: [number, number, string][] = []): ScenarioFigures {
  const failed: Record<string, number> = {};
  let ok = 0;
  let inFlight = 0;
  let afterKill = 0;
  let beforeKills = 0;
  let inFlightWithRetry = 0;
  let afterKillWithRetry = 0;
  let retried = 0;
  let retriedOk = 0;
  for (const [start, end, outcome, , retry] of records) {
    if (outcome === 'ok') {
      ok++;
      continue;
    }
    failed[outcome] = (failed[outcome] ?? 0) + 1;
    if (retry !== undefined && retry !== '') retried++;
    const saved = retry === 'ok';
    if (saved) retriedOk++;
    // The kill a failure belongs to: the last one before the failure ended.
    let k: KillRecord | undefined;
    for (const x of kills) if (x.killUs <= end) k = x;
    if (k === undefined) beforeKills++;
    else if (start < k.killUs) {
      inFlight++;
      if (!saved) inFlightWithRetry++;
    } else {
      afterKill++;
      if (!saved) afterKillWithRetry++;
    }
  }
  const gaps: number[] = [];
  const execToReply: number[] = [];
  const startToReply: number[] = [];
  for (const k of kills) {
    const first = records.filter((r) => r[2] === 'ok' && r[1] > k.killUs && r[3] !== k.pid).reduce<LoadRecord | null>((a, r) => (a === null || r[1] < a[1] ? r : a), null);
    if (first === null) continue;
    gaps.push((first[1] - k.killUs) / 1000);
    execToReply.push((first[1] - k.execUs) / 1000);
    if (k.inactiveExitUs > k.killUs) startToReply.push((first[1] - k.inactiveExitUs) / 1000);
  }
  const reaped = kills.filter((k) => k.exitSeenUs > 0);
  const ms = (a: number, b: number): number => (b - a) / 1000;
  const seen: number[] = [];
  const action: number[] = [];
  const actionToExec: number[] = [];
  for (const k of kills) {
    const exit = sentinelLog.find((l) => l[2] === 'main process of target exited' && l[1] === k.pid);
    const started = exit === undefined ? undefined : sentinelLog.find((l) => l[2] === 'recovery action started' && l[0] >= exit[0]);
    if (exit === undefined || started === undefined) continue;
    seen.push(exit[0] - k.killWallMs);
    action.push(started[0] - exit[0]);
    actionToExec.push((k.execUs - k.killUs) / 1000 - (started[0] - k.killWallMs));
  }
  const span = records.length > 1 ? (records[records.length - 1]![0] - records[0]![0]) / 1e6 : NaN;
  return {
    kills: kills.length,
    requests: records.length,
    rate: records.length / span,
    ok,
    failed,
    failedTotal: records.length - ok,
    inFlight,
    afterKill,
    beforeKills,
    gapMs: stats(gaps),
    killToExecMs: stats(kills.map((k) => (k.execUs - k.killUs) / 1000)),
    execToReadyMs: stats(kills.map((k) => (k.readyUs - k.execUs) / 1000)),
    execToReplyMs: stats(execToReply),
    killToSeenMs: stats(seen),
    seenToActionMs: stats(action),
    actionToExecMs: stats(actionToExec),
    restartedBySystemd: kills.filter((k) => k.nRestartsAfter > k.nRestartsBefore).length,
    failedWithRetry: records.length - ok - retriedOk,
    inFlightWithRetry,
    afterKillWithRetry,
    retried,
    retriedOk,
    killToReapedMs: stats(reaped.map((k) => ms(k.killUs, k.exitSeenUs))),
    reapedToInactiveMs: stats(reaped.map((k) => ms(k.exitSeenUs, k.inactiveEnterUs))),
    inactiveToStartMs: stats(reaped.map((k) => ms(k.inactiveEnterUs, k.inactiveExitUs))),
    startToExecMs: stats(kills.filter((k) => k.inactiveExitUs > k.killUs).map((k) => ms(k.inactiveExitUs, k.execUs))),
    killToStartMs: stats(kills.filter((k) => k.inactiveExitUs > k.killUs).map((k) => ms(k.killUs, k.inactiveExitUs))),
    startToReplyMs: stats(startToReply),
  };
}
