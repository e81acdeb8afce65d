// The recovery state machine of one target: through the restart budget and back-off, kill what is
// left, launch again, wait until healthy; and the adoption of a unit that came back on its own
// (docs/EBPF.md#recovery).
import type { Logger } from 'pino';
import { SentinelError, messageOf } from '../../core/errors.js';
import type { ProcIdentity } from '../../adapters/proc.js';
import type { SupervisedChild } from '../../adapters/process.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { StoppedOutside } from './launchers.js';
import { exitText } from './detection.js';
import { nsToMs, type TargetAuditEvent, type TargetRuntime } from './types.js';

export type { TargetRuntime } from './types.js';

/** What recovery needs from the supervisor: log, audit, clocks, whether it stops, and the watchers. */
export interface RecoveryContext {
  log: Logger;
  emit(event: TargetAuditEvent): void;
  now(): number;
  hrtimeNs(): bigint;
  /** stop() has begun: start nothing new, end what was started meanwhile. */
  stopped(): boolean;
  /** A new main process is up: detect its exit and probe it from now on. */
  watch(rt: TargetRuntime, identity: ProcIdentity, child: SupervisedChild | null): void;
  /** The main process is about to be killed: its exit is no news. */
  unwatch(rt: TargetRuntime, pid: number | null): void;
  /** A process starts with a clean count of failed health probes. */
  resetHealth(rt: TargetRuntime): void;
}

/** Probe interval while waiting for a new process to become healthy, ms (at most the health interval). */
const READY_PROBE_MS = 100;

// Why: one recovery at a time per target, the same steps for every kind; the supervisor decides when
// (an exit, a trigger, an operator's reset), this decides how.
export class TargetRecovery {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly ctx: RecoveryContext) {}

  // Why: back-off sleeps end at once when the supervisor stops.
  cancel(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  // Why: a target is "running" only once its process is up and answers its health probe; until then
  // it is "starting" and probe failures do not count (docs/EBPF.md#recovery).
  becomeRunning(rt: TargetRuntime): void {
    const pid = rt.pid;
    if (rt.spec.health === undefined) {
      rt.state = 'running';
      return;
    }
    rt.state = 'starting';
    this.awaitHealthy(rt).then(
      () => {
        if (rt.pid === pid && rt.state === 'starting') rt.state = 'running';
      },
      (e: unknown) => {
        if (rt.pid !== pid || this.ctx.stopped()) return;
        rt.state = 'down';
        void this.recover(rt, messageOf(e), this.ctx.hrtimeNs());
      },
    );
  }

  // Why: a target the sentinel gave up on (budget spent) or that was stopped outside it returns to
  // "running" as soon as systemd (or an operator) has its unit active again.
  async adoptReturned(targets: readonly TargetRuntime[]): Promise<void> {
    for (const rt of targets) {
      if (this.ctx.stopped() || rt.recovering || !rt.launcher.returnsOutside || (rt.state !== 'failed' && rt.state !== 'down')) continue;
      rt.recovering = true;
      try {
        await this.launch(rt, true);
        rt.failedReason = null;
        this.becomeRunning(rt);
        this.ctx.log.info({ target: rt.spec.name, pid: rt.pid }, 'unit active again: target running');
        this.ctx.emit({ event: 'recovered', target: rt.spec.name, pid: rt.pid, by: 'systemd', restarts: rt.restarts });
      } catch {
        // still not active
      } finally {
        rt.recovering = false;
      }
    }
  }

  // Why: at the daemon's start systemd may still be starting a unit target (ordered after the sentinel):
  // that start is systemd's, so it is waited for (bounded by startTimeoutMs) without spending the budget or
  // counting a restart; if it does not come up, it is recovered like a target found not running, unless
  // someone stopped it meanwhile (an operator's stop stands).
  async awaitStart(rt: TargetRuntime): Promise<void> {
    const { ctx } = this;
    if (rt.recovering || ctx.stopped()) return;
    rt.recovering = true;
    rt.state = 'starting';
    let failed: string | null = null;
    let stoppedOutside = false;
    try {
      await this.launch(rt, false, true);
    } catch (e) {
      failed = messageOf(e);
      stoppedOutside = e instanceof StoppedOutside;
    } finally {
      rt.recovering = false;
    }
    if (ctx.stopped()) return;
    if (failed === null) {
      this.becomeRunning(rt);
      return;
    }
    if (stoppedOutside) {
      // someone stopped the unit while systemd was starting it: it stays stopped (adopted again once active)
      rt.state = 'down';
      rt.failedReason = failed;
      ctx.log.warn({ target: rt.spec.name, reason: failed }, 'unit stopped outside the sentinel; it is adopted again once active');
      ctx.emit({ event: 'stopped-outside', target: rt.spec.name, reason: failed });
      return;
    }
    rt.state = 'down';
    ctx.log.error({ target: rt.spec.name, reason: failed }, 'target not running at start; recovering');
    await this.recover(rt, `not running at start: ${failed}`, ctx.hrtimeNs());
  }

  // Why: one recovery at a time per target, through the budget and back-off, audited with latency.
  // `announce` (the exit that called for it, logged and audited) runs once, before anything this logs,
  // but after the recovery action has been issued: nothing is written on the way to the action.
  async recover(rt: TargetRuntime, reason: string, sinceNs: bigint, leftToSystemd: string | null = null, announceExit?: () => void): Promise<void> {
    const { ctx } = this;
    let pending = announceExit;
    const announce = (): void => {
      const fn = pending;
      pending = undefined;
      fn?.();
    };
    if (rt.recovering || ctx.stopped()) {
      announce();
      return;
    }
    rt.recovering = true;
    let retry: string | null = null;
    try {
      // systemd restarts it (its watchdog, an operator's job): not ours to count or to run
      const decision = leftToSystemd !== null ? { allow: true as const, delayMs: 0, recentRestarts: 0 } : rt.budget.decide(ctx.now());
      if (!decision.allow) {
        announce();
        rt.state = 'failed';
        rt.failedReason = `${decision.reason} (last: ${reason})`;
        // A process judged broken (hung, retransmitting) is not left running unsupervised (docs/EBPF.md#recovery).
        const broken = rt.pid;
        await this.giveUp(rt);
        ctx.log.error({ target: rt.spec.name, reason: rt.failedReason, killedPid: broken }, 'target not restarted: restart budget exhausted');
        ctx.emit({ event: 'budget-exhausted', target: rt.spec.name, reason: rt.failedReason, recentRestarts: decision.recentRestarts, killedPid: broken });
        return;
      }
      rt.state = 'recovering';
      if (decision.delayMs > 0) {
        announce();
        ctx.log.info({ target: rt.spec.name, delayMs: decision.delayMs, recentRestarts: decision.recentRestarts }, 'backing off before restart');
        await this.sleep(decision.delayMs);
        if (ctx.stopped()) return;
      }
      if (leftToSystemd === null) rt.budget.record(ctx.now());
      rt.restarts++;
      const startedNs = ctx.hrtimeNs();
      const t0 = ctx.now();
      const acting = this.act(rt, leftToSystemd);
      acting.catch(() => undefined); // awaited below; handled even if the logging before that throws
      try {
        announce();
        const latencyMs = nsToMs(startedNs - sinceNs);
        rt.lastRecoveryLatencyMs = latencyMs;
        const action = leftToSystemd === null ? rt.launcher.action : `left to systemd (${leftToSystemd})`;
        ctx.log.info({ target: rt.spec.name, action, reason, latencyMs }, 'recovery action started');
        ctx.emit({ event: 'recovery-started', target: rt.spec.name, action, reason, latencyMs, sinceNs: sinceNs.toString(), startedNs: startedNs.toString(), backoffMs: decision.delayMs });
        await acting;
        await this.awaitHealthy(rt);
        if (ctx.stopped()) {
          // stop() ran while the action was in flight: do not leave a process of ours behind
          if (rt.launcher.ownsProcess) await this.killCurrent(rt);
          return;
        }
        // An exit seen while this recovery ran was not acted on (one recovery at a time): it fails this one instead.
        if (rt.pid === null) throw new SentinelError('unavailable', `main PID ${String(rt.lastPid)} exited while starting (${exitText(rt.lastExit, rt.lastPid)})`, { where: rt.spec.name });
        rt.state = 'running';
        rt.failedReason = null;
        ctx.resetHealth(rt);
        ctx.log.info({ target: rt.spec.name, pid: rt.pid, actionMs: ctx.now() - t0, restarts: rt.restarts }, 'target recovered');
        ctx.emit({ event: 'recovered', target: rt.spec.name, pid: rt.pid, actionMs: ctx.now() - t0, restarts: rt.restarts });
      } catch (e) {
        const why = messageOf(e);
        rt.state = 'down';
        rt.failedReason = why;
        if (e instanceof StoppedOutside) {
          ctx.log.warn({ target: rt.spec.name, reason: why }, 'unit stopped outside the sentinel; it is adopted again once active');
          ctx.emit({ event: 'stopped-outside', target: rt.spec.name, reason: why });
          return;
        }
        ctx.log.error({ target: rt.spec.name, reason: why }, 'recovery action failed; will retry within the budget');
        ctx.emit({ event: 'recovery-failed', target: rt.spec.name, reason: why });
        retry = why;
      }
    } finally {
      rt.recovering = false;
    }
    if (retry !== null && !ctx.stopped()) await this.recover(rt, `previous recovery failed: ${retry}`, ctx.hrtimeNs());
  }

  // Why: the recovery action; its first step (the kill of what is left of a command's group, the restart
  // command, systemctl) is issued before this returns, so `startedNs` taken just before it is when it began.
  private async act(rt: TargetRuntime, leftToSystemd: string | null): Promise<void> {
    // after an exit nothing is left to kill (no PID, no child handle): the launch itself is the first step
    if (leftToSystemd === null && (rt.pid !== null || rt.child !== null)) await this.killCurrent(rt);
    await this.launch(rt, false, leftToSystemd !== null);
  }

  // Why: start (first) or recover the target's main process, then watch it.
  async launch(rt: TargetRuntime, first: boolean, awaitOnly = false): Promise<void> {
    const { identity, child, leftovers } = await rt.launcher.launch({ first, lastPid: rt.lastPid, log: this.ctx.log, now: () => this.ctx.now(), sleep: (ms) => this.sleep(ms), awaitOnly });
    if (leftovers !== undefined && leftovers.length > 0) this.ctx.emit({ event: 'leftovers-killed', target: rt.spec.name, pids: leftovers });
    if (this.ctx.stopped()) {
      // stop() ran while the process was being started: it never saw this child, so end it here
      if (rt.launcher.ownsProcess) await rt.launcher.kill(identity, child);
      throw new SentinelError('unavailable', 'the supervisor stopped while the target was starting', { where: rt.spec.name });
    }
    rt.pid = identity.pid;
    rt.identity = identity;
    rt.child = child;
    this.ctx.watch(rt, identity, child);
  }

  // Why: a hung or retransmitting process is forgotten, then killed, before its replacement starts.
  private async killCurrent(rt: TargetRuntime): Promise<void> {
    const { pid, child, identity } = rt;
    if (pid !== null) rt.lastPid = pid;
    this.ctx.unwatch(rt, pid);
    rt.pid = null;
    await rt.launcher.kill(pid === null ? null : identity, child);
    rt.child = null;
  }

  // Why: the budget is spent; the current process (if any is left) is stopped and forgotten.
  private async giveUp(rt: TargetRuntime): Promise<void> {
    const { pid, child, identity } = rt;
    this.ctx.unwatch(rt, pid);
    rt.pid = null;
    rt.child = null;
    try {
      await rt.launcher.giveUp(pid === null ? null : identity, child);
    } catch (e) {
      this.ctx.log.error({ target: rt.spec.name, pid, reason: messageOf(e) }, 'cannot kill the process of a failed target');
    }
  }

  // Why: the first passing probe of the new process, bounded by startTimeoutMs.
  private async awaitHealthy(rt: TargetRuntime): Promise<void> {
    const health = rt.spec.health;
    const pid = rt.pid;
    if (health === undefined) return;
    const deadline = this.ctx.now() + rt.spec.startTimeoutMs;
    let last = 'no probe yet';
    for (;;) {
      if (this.ctx.stopped()) throw new SentinelError('unavailable', 'the supervisor stopped while the target was starting', { where: rt.spec.name });
      if (rt.pid !== pid) throw new SentinelError('unavailable', `main PID ${String(pid)} exited before it was healthy (${exitText(rt.lastExit, pid)})`, { where: rt.spec.name });
      const r = await httpProbe(health.url, health.timeoutMs);
      if (r.ok) return;
      last = r.error;
      if (this.ctx.now() >= deadline) throw new SentinelError('unavailable', `not healthy within ${rt.spec.startTimeoutMs} ms of its start (last probe: ${last})`, { where: rt.spec.name });
      await this.sleep(Math.min(health.intervalMs, READY_PROBE_MS));
    }
  }
}
