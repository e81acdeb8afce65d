// The recovery state machine of the protected targets: start, stop, status, and on an exit, a failed
// health probe or a retransmit alarm, recover through the restart budget with back-off (docs/EBPF.md#recovery).
import { SentinelError, messageOf } from '../../core/errors.js';
import { RestartBudget } from '../../core/recovery-policy.js';
import { DEFAULT_DAEMON_LIMITS } from '../../core/config-limits.js';
import type { SupervisedChild } from '../../adapters/process.js';
import { httpProbe } from '../../adapters/http-probe.js';
import { bpftraceSources } from './bpftrace-sources.js';
import { ExitDetector, type DetectedExit } from './detection.js';
import { StoppedOutside, launcherFor, type Launcher } from './launchers.js';
import { HealthProbes, RetransmitAlarm, type TriggerDeps } from './triggers.js';
import type { TargetSpec } from './spec.js';
import { nsToMs, type KernelSources, type TargetResetResult, type SourceStats, type TargetAuditEvent, type TargetState, type TargetStatus, type TargetSupervisorDeps } from './types.js';

interface TargetRuntime {
  readonly spec: TargetSpec;
  readonly launcher: Launcher;
  readonly budget: RestartBudget;
  pid: number | null;
  /** The main PID before the last exit or kill, to tell a new process from the old one. */
  lastPid: number | null;
  child: SupervisedChild | null;
  state: TargetState;
  restarts: number;
  lastDetectionLatencyMs: number | null;
  lastRecoveryLatencyMs: number | null;
  failedReason: string | null;
  recovering: boolean;
}

/** How often a failed or stopped unit target is checked for being active again, ms. */
const ADOPT_INTERVAL_MS = 1000;
/** Probe interval while waiting for a new process to become healthy, ms (at most the health interval). */
const READY_PROBE_MS = 100;

// Why: the daemon builds one for all configured targets and calls start/stop; every target runs the
// same state machine; what differs between a unit, a command and a pid file sits in its launcher.
export class TargetSupervisor {
  private readonly targets: TargetRuntime[];
  private readonly now: () => number;
  private readonly hrtime: () => bigint;
  private readonly sources: KernelSources;
  private readonly detection: ExitDetector;
  private readonly retransmits: RetransmitAlarm;
  private readonly health: HealthProbes;
  private readonly timers = new Set<NodeJS.Timeout>();
  private adoptTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    specs: TargetSpec[],
    private readonly deps: TargetSupervisorDeps,
  ) {
    this.now = deps.now ?? (() => performance.now());
    this.hrtime = deps.hrtimeNs ?? (() => process.hrtime.bigint());
    const triggers: TriggerDeps = { log: deps.log, emit: (e) => this.emit(e), hrtimeNs: this.hrtime, now: this.now, recover: (t, reason, ns) => void this.recover(t as TargetRuntime, reason, ns) };
    this.targets = specs.map((spec) => ({
      spec,
      launcher: launcherFor(spec, { stdio: deps.commandStdio ?? 'ignore', ...(deps.childRecords !== undefined ? { records: deps.childRecords } : {}), notify: { log: deps.log, emit: (e) => this.emit(e) } }),
      budget: new RestartBudget(spec.budget, spec.backoff),
      pid: null,
      lastPid: null,
      child: null,
      state: 'starting',
      restarts: 0,
      lastDetectionLatencyMs: null,
      lastRecoveryLatencyMs: null,
      failedReason: null,
      recovering: false,
    }));
    this.health = new HealthProbes(this.targets, triggers);
    this.sources = (deps.sources ?? bpftraceSources(deps.tracer ?? {}, deps.log))({
      exit: (e) => this.detection.onKernelExit(e),
      retransmit: (e) => this.retransmits.onRetransmit(e),
      state: (source, state, reason) => {
        if (!this.stopped) this.emit({ event: state === 'attached' ? 'tracer-attached' : 'tracer-down', tracer: source, reason });
      },
      coverage: () => this.detection.refresh(),
    });
    this.detection = new ExitDetector(this.sources.exit, { pollIntervalMs: deps.pollIntervalMs ?? DEFAULT_DAEMON_LIMITS.exitPollIntervalMs, childExitEvents: deps.childExitEvents ?? true, hrtimeNs: this.hrtime, onExit: (e) => this.handleExit(e) });
    this.retransmits = new RetransmitAlarm(this.targets, this.sources.retransmit, deps.retransmitCheckIntervalMs ?? DEFAULT_DAEMON_LIMITS.retransmitCheckIntervalMs, triggers);
  }

  // Why: targets first (so their PIDs are known), then the kernel sources; polling covers the attach gap.
  async start(): Promise<void> {
    this.stopped = false;
    for (const rt of this.targets) {
      try {
        await this.launch(rt, true);
        this.becomeRunning(rt);
      } catch (e) {
        const why = messageOf(e);
        this.deps.log.error({ target: rt.spec.name, reason: why }, 'target not running at start; recovering');
        rt.state = 'down';
        void this.recover(rt, `not running at start: ${why}`, this.hrtime());
      }
    }
    await this.detection.start();
    this.health.start();
    await this.retransmits.start();
    this.adoptTimer = setInterval(() => void this.adoptReturned(), ADOPT_INTERVAL_MS);
  }

  // Why: the kernel sources stop first, then each launcher ends what is ours (supervised commands).
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.adoptTimer !== null) clearInterval(this.adoptTimer);
    this.adoptTimer = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.health.stop();
    await Promise.all([this.detection.stop(), this.retransmits.stop()]);
    await Promise.all(
      this.targets.map(async (rt) => {
        rt.state = 'stopped';
        const child = rt.child;
        rt.pid = null;
        rt.child = null;
        await rt.launcher.stop(child);
      }),
    );
  }

  status(): TargetStatus[] {
    return this.targets.map((rt) => {
      const { mode, degraded } = this.detection.coverage(rt.pid, rt.launcher.ownsProcess);
      const reasons = degraded === null ? [] : [degraded];
      const retransmit = this.retransmits.degraded(rt);
      if (retransmit !== null) reasons.push(`retransmit detection unavailable: ${retransmit}`);
      return {
        name: rt.spec.name,
        kind: rt.launcher.kind,
        pid: rt.pid,
        state: rt.state,
        mode,
        degraded: reasons.length > 0 ? reasons.join('; ') : null,
        restarts: rt.restarts,
        lastDetectionLatencyMs: rt.lastDetectionLatencyMs,
        lastRecoveryLatencyMs: rt.lastRecoveryLatencyMs,
        failedReason: rt.failedReason,
        retransmitAlarm: this.retransmits.alarm(rt),
        healthFailures: this.health.failures(rt),
      };
    });
  }

  // Why: `sentinel target reset`: the operator gives a target a fresh restart budget; one that is
  // failed (budget spent) or down is recovered at once (docs/EBPF.md#recovery).
  reset(name: string): TargetResetResult {
    const rt = this.targets.find((t) => t.spec.name === name);
    if (rt === undefined) throw new SentinelError('not-found', `no target named "${name}" (targets: ${this.targets.map((t) => t.spec.name).join(', ') || 'none'})`, { where: 'target' });
    if (this.stopped) throw new SentinelError('unavailable', 'the targets are stopping', { where: name });
    const previousState = rt.state;
    rt.budget.reset();
    const recover = (previousState === 'failed' || previousState === 'down') && !rt.recovering;
    const action = recover ? 'recovering' : 'budget reset';
    this.deps.log.info({ target: name, previousState, action }, 'target reset by the operator');
    this.emit({ event: 'reset', target: name, previousState, action, by: 'operator' });
    if (recover) {
      rt.failedReason = null;
      void this.recover(rt, `reset by the operator (was ${previousState})`, this.hrtime());
    }
    return { target: name, previousState, action, state: rt.state };
  }

  // Why: one line for sd_notify STATUS= and `sentinel status`.
  statusLine(): string {
    if (this.targets.length === 0) return 'targets: none';
    const parts = this.status().map((s) => {
      const lat = s.lastRecoveryLatencyMs === null ? '' : ` last ${s.lastRecoveryLatencyMs.toFixed(1)} ms`;
      const deg = s.degraded === null ? '' : ' (degraded)';
      return `${s.name} ${s.state} pid ${s.pid ?? '-'} ${s.mode}${deg} restarts ${s.restarts}${lat}`;
    });
    return `targets: ${parts.join('; ')}`;
  }

  // Why: the protection manager protects the current main PIDs and their children.
  pids(): number[] {
    return this.targets.flatMap((rt) => (rt.pid === null ? [] : [rt.pid]));
  }

  // Why: counters of the kernel sources (events, unparsed lines, restarts) for status and tests.
  tracerStats(): { exit: SourceStats | null; retransmit: SourceStats | null; exitTracerPid: number | undefined } {
    return { exit: this.sources.exit.stats(), retransmit: this.sources.retransmit.stats(), exitTracerPid: this.sources.exit.helperPid };
  }

  private emit(event: TargetAuditEvent): void {
    try {
      this.deps.audit?.(event);
    } catch (e) {
      this.deps.log.error({ err: e, event: event.event }, 'audit callback failed');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  // Why: the first detector to see the exit wins (detection.ts); the target goes down and recovery starts.
  private handleExit(e: DetectedExit): void {
    const rt = this.targets.find((t) => t.pid === e.pid);
    if (rt === undefined || this.stopped || rt.state === 'stopped') return;
    rt.lastPid = e.pid;
    rt.pid = null;
    rt.state = 'down';
    const detectionLatencyMs = e.exitNs === null ? null : nsToMs(e.detectedNs - e.exitNs);
    if (detectionLatencyMs !== null) rt.lastDetectionLatencyMs = detectionLatencyMs;
    const fields = { target: rt.spec.name, pid: e.pid, signal: e.signal, exitStatus: e.exitStatus, via: e.via, detectionLatencyMs };
    this.deps.log.warn(fields, 'main process of target exited');
    this.emit({ event: 'exit', ...fields, exitNs: e.exitNs?.toString() ?? null, detectedNs: e.detectedNs.toString() });
    const how = e.signal !== null ? `signal ${e.signal}` : e.exitStatus !== null ? `status ${e.exitStatus}` : 'gone';
    const reason = `main PID ${e.pid} exited (${how})`;
    const since = e.exitNs ?? e.detectedNs;
    if (rt.launcher.exitHandling === undefined) {
      void this.recover(rt, reason, since);
      return;
    }
    rt.state = 'recovering'; // not "down" while systemd is asked: a returned unit must not be adopted meanwhile
    void rt.launcher.exitHandling(e).then((h) => this.recover(rt, reason, since, h.by === 'systemd' ? h.why : null));
  }

  // Why: a target is "running" only once its process is up and answers its health probe; until then
  // it is "starting" and probe failures do not count (docs/EBPF.md#recovery).
  private becomeRunning(rt: TargetRuntime): void {
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
        if (rt.pid !== pid || this.stopped) return;
        rt.state = 'down';
        void this.recover(rt, messageOf(e), this.hrtime());
      },
    );
  }

  // Why: the first passing probe of the new process, bounded by startTimeoutMs.
  private async awaitHealthy(rt: TargetRuntime): Promise<void> {
    const health = rt.spec.health;
    const pid = rt.pid;
    if (health === undefined) return;
    const deadline = this.now() + rt.spec.startTimeoutMs;
    let last = 'no probe yet';
    for (;;) {
      if (this.stopped || rt.pid !== pid) throw new SentinelError('unavailable', `main PID ${String(pid)} exited before it was healthy`, { where: rt.spec.name });
      const r = await httpProbe(health.url, health.timeoutMs);
      if (r.ok) return;
      last = r.error;
      if (this.now() >= deadline) throw new SentinelError('unavailable', `not healthy within ${rt.spec.startTimeoutMs} ms of its start (last probe: ${last})`, { where: rt.spec.name });
      await this.sleep(Math.min(health.intervalMs, READY_PROBE_MS));
    }
  }

  // Why: a target the sentinel gave up on (budget spent) or that was stopped outside it returns to
  // "running" as soon as systemd (or an operator) has its unit active again.
  private async adoptReturned(): Promise<void> {
    for (const rt of this.targets) {
      if (this.stopped || rt.recovering || !rt.launcher.returnsOutside || (rt.state !== 'failed' && rt.state !== 'down')) continue;
      rt.recovering = true;
      try {
        await this.launch(rt, true);
        rt.failedReason = null;
        this.becomeRunning(rt);
        this.deps.log.info({ target: rt.spec.name, pid: rt.pid }, 'unit active again: target running');
        this.emit({ event: 'recovered', target: rt.spec.name, pid: rt.pid, by: 'systemd', restarts: rt.restarts });
      } catch {
        // still not active
      } finally {
        rt.recovering = false;
      }
    }
  }

  // Why: one recovery at a time per target, through the budget and back-off, audited with latency.
  private async recover(rt: TargetRuntime, reason: string, sinceNs: bigint, leftToSystemd: string | null = null): Promise<void> {
    if (rt.recovering || this.stopped) return;
    rt.recovering = true;
    let retry: string | null = null;
    try {
      // systemd restarts it (its watchdog, an operator's job): not ours to count or to run
      const decision = leftToSystemd !== null ? { allow: true as const, delayMs: 0, recentRestarts: 0 } : rt.budget.decide(this.now());
      if (!decision.allow) {
        rt.state = 'failed';
        rt.failedReason = `${decision.reason} (last: ${reason})`;
        // A process judged broken (hung, retransmitting) is not left running unsupervised (docs/EBPF.md#recovery).
        const broken = rt.pid;
        await this.giveUp(rt);
        this.deps.log.error({ target: rt.spec.name, reason: rt.failedReason, killedPid: broken }, 'target not restarted: restart budget exhausted');
        this.emit({ event: 'budget-exhausted', target: rt.spec.name, reason: rt.failedReason, recentRestarts: decision.recentRestarts, killedPid: broken });
        return;
      }
      rt.state = 'recovering';
      if (decision.delayMs > 0) {
        this.deps.log.info({ target: rt.spec.name, delayMs: decision.delayMs, recentRestarts: decision.recentRestarts }, 'backing off before restart');
        await this.sleep(decision.delayMs);
        if (this.stopped) return;
      }
      if (leftToSystemd === null) rt.budget.record(this.now());
      rt.restarts++;
      const startedNs = this.hrtime();
      const latencyMs = nsToMs(startedNs - sinceNs);
      rt.lastRecoveryLatencyMs = latencyMs;
      const action = leftToSystemd === null ? rt.launcher.action : `left to systemd (${leftToSystemd})`;
      this.deps.log.info({ target: rt.spec.name, action, reason, latencyMs }, 'recovery action started');
      this.emit({ event: 'recovery-started', target: rt.spec.name, action, reason, latencyMs, sinceNs: sinceNs.toString(), startedNs: startedNs.toString(), backoffMs: decision.delayMs });
      const t0 = this.now();
      try {
        if (leftToSystemd === null) await this.killCurrent(rt);
        await this.launch(rt, false, leftToSystemd !== null);
        await this.awaitHealthy(rt);
        if (this.stopped) {
          // stop() ran while the action was in flight: do not leave a process of ours behind
          if (rt.launcher.ownsProcess) await this.killCurrent(rt);
          return;
        }
        rt.state = 'running';
        rt.failedReason = null;
        this.health.reset(rt);
        this.deps.log.info({ target: rt.spec.name, pid: rt.pid, actionMs: this.now() - t0, restarts: rt.restarts }, 'target recovered');
        this.emit({ event: 'recovered', target: rt.spec.name, pid: rt.pid, actionMs: this.now() - t0, restarts: rt.restarts });
      } catch (e) {
        const why = messageOf(e);
        rt.state = 'down';
        rt.failedReason = why;
        if (e instanceof StoppedOutside) {
          this.deps.log.warn({ target: rt.spec.name, reason: why }, 'unit stopped outside the sentinel; it is adopted again once active');
          this.emit({ event: 'stopped-outside', target: rt.spec.name, reason: why });
          return;
        }
        this.deps.log.error({ target: rt.spec.name, reason: why }, 'recovery action failed; will retry within the budget');
        this.emit({ event: 'recovery-failed', target: rt.spec.name, reason: why });
        retry = why;
      }
    } finally {
      rt.recovering = false;
    }
    if (retry !== null && !this.stopped) await this.recover(rt, `previous recovery failed: ${retry}`, this.hrtime());
  }

  // Why: a hung or retransmitting process is forgotten, then killed, before its replacement starts.
  private async killCurrent(rt: TargetRuntime): Promise<void> {
    const { pid, child } = rt;
    if (pid !== null) {
      rt.lastPid = pid;
      this.detection.unwatch(pid);
    }
    rt.pid = null;
    await rt.launcher.kill(pid, child);
    rt.child = null;
  }

  // Why: the budget is spent; the current process (if any is left) is stopped and forgotten.
  private async giveUp(rt: TargetRuntime): Promise<void> {
    const { pid, child } = rt;
    if (pid !== null) this.detection.unwatch(pid);
    rt.pid = null;
    rt.child = null;
    try {
      await rt.launcher.giveUp(pid, child);
    } catch (e) {
      this.deps.log.error({ target: rt.spec.name, pid, reason: messageOf(e) }, 'cannot kill the process of a failed target');
    }
  }

  // Why: start (first) or recover the target's main process, then watch it.
  private async launch(rt: TargetRuntime, first: boolean, awaitOnly = false): Promise<void> {
    const { identity, child, leftovers } = await rt.launcher.launch({ first, lastPid: rt.lastPid, log: this.deps.log, now: this.now, sleep: (ms) => this.sleep(ms), awaitOnly });
    if (leftovers !== undefined && leftovers.length > 0) this.emit({ event: 'leftovers-killed', target: rt.spec.name, pids: leftovers });
    if (this.stopped) {
      // stop() ran while the process was being started: it never saw this child, so end it here
      if (rt.launcher.ownsProcess) await rt.launcher.kill(identity.pid, child);
      throw new SentinelError('unavailable', 'the supervisor stopped while the target was starting', { where: rt.spec.name });
    }
    rt.pid = identity.pid;
    rt.child = child;
    this.health.reset(rt);
    this.detection.watch(identity, child);
  }
}
