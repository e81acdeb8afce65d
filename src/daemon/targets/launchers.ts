// One launcher per target kind: how the main process is started or found, what the recovery action is
// called, and how a hung one is killed. The only place that knows a target's kind (docs/EBPF.md#recovery).
import { SentinelError } from '../../core/errors.js';
import { PidFileLauncher } from './pidfile-launcher.js';
import { runRecoveryCommand, spawnSupervised, type SupervisedChild } from '../../adapters/process.js';
import { jobTypeOf, jobsOf, queueRestart, unitState } from '../../adapters/systemctl.js';
import { NotifyWatch, type NotifyWatchDeps } from './notify-watch.js';
import type { TargetSpec } from './spec.js';
import type { ChildRecords } from './child-records.js';
import { identify, killNow, StoppedOutside, UnitStarting, type ExitHandling, type LaunchContext, type Launched, type Launcher } from './launcher.js';
import type { ProcIdentity } from '../../adapters/proc.js';
import { signalNumber } from './detection.js';

export { StoppedOutside, UnitStarting, type ExitHandling, type LaunchContext, type Launched, type Launcher, type TargetKind } from './launcher.js';

/** How long a child already gone from /proc may take to be reaped, so its exit can be named. */
const REAP_WAIT_MS = 2000;

// Why: a child that died before it could be identified (a bad flag, a missing file, a crash) is named by how it
// ended, as an exit seen later is ("main PID N exited (status 7)"), not only as gone; the operator's first clue.
async function diedAtStart(child: SupervisedChild, where: string, cause: unknown): Promise<never> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([child.exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), REAP_WAIT_MS)))]);
  clearTimeout(timer);
  if (exit === null) throw cause;
  const how = exit.signal !== null ? `signal ${String(signalNumber(exit.signal))}, ${exit.signal}` : `status ${String(exit.exitCode)}`;
  throw new SentinelError('unavailable', `main PID ${String(child.pid)} exited at start (${how})`, { where, cause });
}

// Why: a `command` target is the sentinel's own child, respawned by it and stopped with it — and it dies with the
// daemon: SIGKILL when the daemon dies (PR_SET_PDEATHSIG), its own process group killed at the next start
// (docs/EBPF.md#command-targets-and-the-daemons-death).
class CommandLauncher implements Launcher {
  readonly kind = 'command';
  readonly action = 'respawn';
  readonly ownsProcess = true;
  readonly returnsOutside = false;

  /** With `watchdog`: the sentinel is the child's notify socket. */
  private readonly notify: NotifyWatch | null;

  constructor(
    private readonly spec: TargetSpec,
    private readonly stdio: 'ignore' | 'inherit',
    private readonly records: ChildRecords | null,
    notifyDeps: NotifyWatchDeps | undefined,
  ) {
    if (spec.restart !== undefined) {
      throw new SentinelError('config', 'a "command" target is respawned by the sentinel; "restart" is for "unit" or "pidFile" targets', { where: `targets.${spec.name}.restart` });
    }
    this.notify = spec.watchdog !== undefined && notifyDeps !== undefined ? new NotifyWatch(spec.name, spec.watchdog, notifyDeps) : null;
  }

  async launch(ctx: LaunchContext): Promise<Launched> {
    const where = `targets.${this.spec.name}.command`;
    const leftovers = ctx.first && this.records !== null ? await this.records.sweep(this.spec.name) : [];
    if (leftovers.length > 0) ctx.log.warn({ target: this.spec.name, pids: leftovers }, 'killed what an earlier daemon left of this target before starting it');
    const notify = this.notify;
    await notify?.open();
    let child: SupervisedChild;
    try {
      // The daemon's own NOTIFY_SOCKET never reaches a child; with `watchdog` the child gets ours.
      const env = notify?.env() ?? { NOTIFY_SOCKET: null, WATCHDOG_USEC: null, WATCHDOG_PID: null };
      child = await spawnSupervised(this.spec.command ?? [], { stdio: notify !== null ? 'pipe' : this.stdio, where, dieWithParent: true, ownGroup: true, env });
    } catch (e) {
      if (e instanceof SentinelError) throw new SentinelError(e.code, `cannot start command: ${e.message}`, { where, cause: e });
      throw e;
    }
    const identity = await identify(child.pid, this.spec.name).catch((e: unknown) => diedAtStart(child, this.spec.name, e));
    await this.records?.remember(this.spec.name, { pid: identity.pid, startTicks: identity.startTicks, pgid: child.pid });
    if (notify !== null) {
      try {
        await notify.start(child, this.stdio === 'inherit', this.spec.startTimeoutMs);
      } catch (e) {
        await child.terminate({ signal: 'SIGKILL', graceMs: 0 });
        throw e;
      }
    }
    return { identity, child, leftovers };
  }

  kill(proc: ProcIdentity | null, child: SupervisedChild | null): Promise<void> {
    return killNow(proc, child);
  }

  async stop(child: SupervisedChild | null): Promise<void> {
    await this.notify?.close();
    await child?.terminate({ signal: 'SIGTERM', graceMs: this.spec.stopGraceMs });
    await this.records?.forget(this.spec.name);
  }

  async giveUp(proc: ProcIdentity | null, child: SupervisedChild | null): Promise<void> {
    await killNow(proc, child);
    // nothing of this target runs any more: a record kept until the next start could name a reused group
    await this.records?.forget(this.spec.name);
  }
}

// Why: a `unit` target belongs to systemd: recovery queues a restart (never waiting behind other jobs)
// and then watches, bounded, for the new MainPID to be active; an exit by the unit's watchdog or by an
// operator's stop is systemd's to handle (docs/EBPF.md#who-does-what).
class UnitLauncher implements Launcher {
  readonly kind = 'unit';
  readonly action: string;
  readonly ownsProcess = false;
  readonly returnsOutside = true;
  private watchdogSignal: number | null = null;
  /** The main process the unit was last found active with, and the invocation id of that run. */
  private run: { pid: number; invocationId: string } | null = null;

  constructor(private readonly spec: TargetSpec) {
    this.action = spec.restart !== undefined ? 'restart command' : 'restart --no-block --job-mode=fail';
  }

  private get unit(): string {
    return this.spec.unit ?? '';
  }

  async launch(ctx: LaunchContext): Promise<Launched> {
    const unit = this.unit;
    if (ctx.first) {
      const st = await unitState(unit);
      if (st.watchdogUsec > 0) this.watchdogSignal = st.watchdogSignal;
      if (st.activeState === 'active' && st.mainPid > 0) {
        this.run = { pid: st.mainPid, invocationId: st.invocationId };
        return { identity: await identify(st.mainPid, this.spec.name), child: null };
      }
      // someone is stopping it: not a start to wait for, nor a unit to restart (adopted again once active)
      if (st.job !== null && (await jobTypeOf(unit).catch(() => null)) === 'stop') throw new StoppedOutside(unit, `${st.activeState}/${st.subState}, stop job ${String(st.job)}`);
      // systemd is starting it (at boot the backend is ordered after the sentinel): its own start, not a recovery
      if (st.subState !== 'auto-restart' && (st.job !== null || st.activeState === 'activating')) throw new UnitStarting(unit, `${st.activeState}/${st.subState}${st.job === null ? '' : `, job ${String(st.job)}`}`);
      throw new SentinelError('unavailable', `unit has no running main process (${st.activeState}/${st.subState})`, { where: unit });
    }
    let ours = false;
    if (ctx.awaitOnly !== true) {
      if (this.spec.restart !== undefined) await runRecoveryCommand(this.spec.restart, this.spec.restartTimeoutMs, unit);
      else {
        const q = await queueRestart(unit);
        ours = q.queued;
        const how = { via: q.via, ms: q.ms, ...(q.busProblem === undefined ? {} : { busProblem: q.busProblem }) };
        if (!q.queued) ctx.log.info({ target: this.spec.name, reason: q.reason, ...how }, 'another job is queued for the unit; waiting for it instead of restarting');
        else ctx.log.info({ target: this.spec.name, ...how }, 'restart job queued');
      }
    }
    return { identity: await identify(await this.awaitActive(ctx, ours), this.spec.name), child: null };
  }

  // Why: "recovered" means a new main process that systemd counts as started (READY=1 for Type=notify).
  // With `kick`, a unit seen in auto-restart before any new process was started is restarted through it,
  // once: our restart job can reach the unit only after it failed (the job still queued when the stop hook
  // ended), and systemd 252 then turns it into a start job that waits for RestartSec=; a restart job on an
  // auto-restart unit starts it at once (docs/EBPF.md#the-restart-job-and-restartsec). A process that then
  // dies while starting is left to Restart= (no restart outside the budget). Over D-Bus, until the new process
  // is started, each read waits for systemd's signal of a change (bounded by the poll interval): no process,
  // no poll. Once it is started the sentinel stays off systemd while it starts: one plain read every 250 ms,
  // no connection held between reads (a connection to PID 1's private socket gets every unit's change
  // signals, which PID 1 builds and sends while the new process starts). Through the systemctl fallback the
  // unit is polled at the same intervals (docs/EBPF.md#the-unit-state-over-d-bus).
  private async awaitActive(ctx: LaunchContext, kick = false): Promise<number> {
    const unit = this.unit;
    const deadline = ctx.now() + this.spec.startTimeoutMs;
    let idleSince: number | null = null;
    let mayKick = kick;
    let spawned = false;
    let known = '';
    let fallbackLogged = false;
    for (;;) {
      const st = await unitState(unit, { waitMs: known === '' || spawned ? 0 : UNIT_POLL_MS, known });
      known = st.key;
      if (st.busProblem !== undefined && !fallbackLogged) {
        fallbackLogged = true;
        ctx.log.info({ target: this.spec.name, busProblem: st.busProblem }, 'unit state read with systemctl show (not over D-Bus)');
      }
      if (st.watchdogUsec > 0) this.watchdogSignal = st.watchdogSignal;
      if (st.activeState === 'active' && st.mainPid > 0 && st.mainPid !== ctx.lastPid) {
        this.run = { pid: st.mainPid, invocationId: st.invocationId };
        return st.mainPid;
      }
      spawned ||= (st.activeState === 'activating' && st.subState !== 'auto-restart') || (st.mainPid > 0 && st.mainPid !== ctx.lastPid);
      if (spawned) mayKick = false;
      if (mayKick && st.subState === 'auto-restart') {
        mayKick = false;
        await this.restartThroughHoldoff(ctx, st.job);
      }
      // inactive with no job and no automatic restart pending: stopped by someone; give it a moment (a restart in flight)
      const idle = (st.activeState === 'inactive' || st.activeState === 'failed') && st.job === null && st.subState !== 'auto-restart';
      idleSince = idle ? (idleSince ?? ctx.now()) : null;
      if (idleSince !== null && ctx.now() - idleSince > UNIT_IDLE_GRACE_MS) throw new StoppedOutside(unit, `${st.activeState}/${st.subState}, result ${st.result}`);
      if (ctx.now() >= deadline) {
        const jobs = await jobsOf(unit).catch(() => '');
        throw new SentinelError('unavailable', `unit not active within ${this.spec.startTimeoutMs} ms (${st.activeState}/${st.subState}, result ${st.result}${jobs === '' ? '' : `; waiting for: ${jobs}`})`, { where: unit });
      }
      if (!st.waited) await ctx.sleep(spawned ? UNIT_POLL_STARTING_MS : UNIT_POLL_MS);
    }
  }

  // Why: merged into the start job waiting in auto-restart (restart is a superset of start). A try-restart:
  // an operator's stop that lands between the state read and this call leaves the unit inactive, and
  // systemd then queues nothing, instead of a restart overriding the stop.
  private async restartThroughHoldoff(ctx: LaunchContext, job: number | null): Promise<void> {
    const q = await queueRestart(this.unit, undefined, 'try-restart').catch((e: unknown) => ({ queued: false as const, ms: 0, reason: e instanceof Error ? e.message : String(e), via: undefined }));
    ctx.log.info({ target: this.spec.name, job, queued: q.queued, ...(q.queued ? {} : { reason: q.reason }), ms: q.ms, via: q.via }, 'unit held in auto-restart for its RestartSec=: restarted through it');
  }

  // A watchdog kill (WatchdogSignal=) or a clean exit may be systemd's own doing: ask it. Anything else
  // (SIGKILL, a crash) is restarted at once, before any RestartSec=; a SIGKILL of a unit with a watchdog is
  // named with its run, so that the supervisor can tell afterwards whether it was systemd's after TimeoutAbortSec=.
  async exitHandling(exit: { pid: number; signal: number | null; exitStatus: number | null }): Promise<ExitHandling> {
    const suspicious = (exit.signal !== null && (exit.signal === this.watchdogSignal || exit.signal === 15)) || exit.exitStatus === 0 || (exit.signal === null && exit.exitStatus === null);
    if (!suspicious) {
      const run = this.run;
      if (exit.signal !== 9 || this.watchdogSignal === null || run === null || run.pid !== exit.pid || run.invocationId === '') return { by: 'sentinel' };
      return { by: 'sentinel', watchdogKill: { unit: this.unit, invocationId: run.invocationId, pid: exit.pid, signal: exit.signal } };
    }
    const st = await unitState(this.unit).catch(() => null);
    if (st === null) return { by: 'sentinel' };
    if (st.result === 'watchdog' || st.subState === 'stop-watchdog') {
      // the run that hung is still the unit's invocation: systemd starts the next one after RestartSec=
      const watchdog = { unit: this.unit, invocationId: st.invocationId === '' ? null : st.invocationId, pid: exit.pid, signal: exit.signal };
      return { by: 'systemd', why: 'watchdog timeout: systemd kills and restarts it (Restart=)', watchdog };
    }
    // A crash also passes through deactivating (ExecStopPost= runs after any exit): only a job is someone's stop or restart.
    if (st.job !== null) return { by: 'systemd', why: `a job of systemd is stopping or restarting it (${st.activeState}/${st.subState})` };
    // ...or a stop job already over: nothing runs on the unit's stop, so it often is by now. A crash never ends
    // with result success, and a clean exit under Restart=always ends in auto-restart, not dead.
    if (st.activeState === 'inactive' && st.subState === 'dead' && st.result === 'success') return { by: 'systemd', why: 'stopped: the unit is inactive (dead) with result success' };
    return { by: 'sentinel' };
  }

  // systemd stops the old process itself
  kill(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  // The unit's main process is killed; what follows is the unit's own Restart= policy, under systemd's limits.
  giveUp(proc: ProcIdentity | null): Promise<void> {
    return killNow(proc, null);
  }
}

/** How often a unit is asked about its state while waiting for it, ms (each `systemctl show` costs ~5-25 ms);
 * over D-Bus, how long a read waits at most for systemd's signal of a change. */
const UNIT_POLL_MS = 50;
/** Once its new main process was started: a plain read this often, no connection held between reads (only
 * "recovered" waits for it; the process serves already). */
const UNIT_POLL_STARTING_MS = 250;
/** How long an inactive unit with no job is given before it counts as stopped outside the sentinel, ms. */
const UNIT_IDLE_GRACE_MS = 1500;

// Why: the one place a target spec's kind is decided (config guarantees exactly one of the three).
export function launcherFor(spec: TargetSpec, opts: { stdio: 'ignore' | 'inherit'; records?: ChildRecords; notify?: NotifyWatchDeps }): Launcher {
  if (spec.command !== undefined) return new CommandLauncher(spec, opts.stdio, opts.records ?? null, opts.notify);
  if (spec.unit !== undefined) return new UnitLauncher(spec);
  return new PidFileLauncher(spec);
}
