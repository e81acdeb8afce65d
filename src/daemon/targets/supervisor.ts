// The targets' supervisor: starts and stops them, answers status, and turns an exit, a failed health
// probe or a retransmit alarm into a recovery (recovery.ts) (docs/EBPF.md#recovery).
import { SentinelError, messageOf } from '../../core/errors.js';
import { RestartBudget } from '../../core/recovery-policy.js';
import { DEFAULT_DAEMON_LIMITS } from '../../core/config-limits.js';
import { engineSources } from './engine-sources.js';
import { EbpfHost } from '../ebpf-host.js';
import { ExitDetector, type DetectedExit } from './detection.js';
import { launcherFor, StoppedOutside, UnitStarting, type ExitHandling } from './launchers.js';
import { TargetRecovery } from './recovery.js';
import { HealthProbes, RetransmitAlarm, type TriggerDeps } from './triggers.js';
import { StallWatch } from './stall-watch.js';
import { collectEvidence, watchdogRecord, type WatchdogExit } from './watchdog-evidence.js';
import { journalLinesOf, unitResultLogged } from '../../adapters/journal.js';
import type { TraceView } from '../../core/trace-view.js';
import type { TargetSpec } from './spec.js';
import { nsToMs, type TargetRuntime, type KernelSources, type TargetResetResult, type SourceStats, type TargetAuditEvent, type TargetStatus, type TargetSupervisorDeps } from './types.js';

/** The evidence note of a watchdog timeout that its signal did not end. */
const KILLED_AFTER_ABORT_TIMEOUT = "the watchdog signal did not end the process: systemd's SIGKILL after TimeoutAbortSec= did";
/** How often a failed or stopped unit target is checked for being active again, ms. */
const ADOPT_INTERVAL_MS = 1000;

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
  private readonly stalls: StallWatch;
  private readonly recovery: TargetRecovery;
  private adoptTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    specs: TargetSpec[],
    private readonly deps: TargetSupervisorDeps,
  ) {
    this.now = deps.now ?? (() => performance.now());
    this.hrtime = deps.hrtimeNs ?? (() => process.hrtime.bigint());
    const triggers: TriggerDeps = { log: deps.log, emit: (e) => this.emit(e), hrtimeNs: this.hrtime, now: this.now, recover: (t, reason, ns) => void this.recovery.recover(t as TargetRuntime, reason, ns) };
    this.targets = specs.map((spec) => ({
      spec,
      launcher: launcherFor(spec, { stdio: deps.commandStdio ?? 'ignore', ...(deps.childRecords !== undefined ? { records: deps.childRecords } : {}), notify: { log: deps.log, emit: (e) => this.emit(e) } }),
      budget: new RestartBudget(spec.budget, spec.backoff),
      pid: null,
      identity: null,
      lastPid: null,
      lastExit: null,
      child: null,
      state: 'starting',
      restarts: 0,
      lastDetectionLatencyMs: null,
      lastRecoveryLatencyMs: null,
      failedReason: null,
      recovering: false,
    }));
    this.health = new HealthProbes(this.targets, triggers);
    this.stalls = new StallWatch(this.targets, deps.ebpf ?? null, triggers);
    this.recovery = new TargetRecovery({
      log: deps.log,
      emit: (e) => this.emit(e),
      now: this.now,
      hrtimeNs: this.hrtime,
      stopped: () => this.stopped,
      watch: (rt, identity, child) => {
        this.health.reset(rt);
        this.detection.watch(identity, child);
        this.stalls.sync(rt);
      },
      unwatch: (_rt, pid) => {
        if (pid !== null) this.detection.unwatch(pid);
      },
      resetHealth: (rt) => this.health.reset(rt),
    });
    this.sources = (deps.sources ?? engineSources(deps.ebpf ?? new EbpfHost({ log: deps.log, disabled: 'no eBPF engine given' }), deps.log))({
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
        await this.recovery.launch(rt, true);
        this.recovery.becomeRunning(rt);
      } catch (e) {
        const why = messageOf(e);
        if (e instanceof UnitStarting) {
          // not a recovery: no restart is spent, the unit's own start job is waited for
          this.deps.log.info({ target: rt.spec.name, reason: why }, 'target being started by systemd; waiting for it');
          void this.recovery.awaitStart(rt);
          continue;
        }
        if (e instanceof StoppedOutside) {
          // a stop job of someone else's is pending: neither waited for as a start nor restarted
          rt.state = 'down';
          rt.failedReason = why;
          this.deps.log.warn({ target: rt.spec.name, reason: why }, 'unit being stopped outside the sentinel; it is adopted again once active');
          this.emit({ event: 'stopped-outside', target: rt.spec.name, reason: why });
          continue;
        }
        this.deps.log.error({ target: rt.spec.name, reason: why }, 'target not running at start; recovering');
        rt.state = 'down';
        void this.recovery.recover(rt, `not running at start: ${why}`, this.hrtime());
      }
    }
    await this.detection.start();
    this.health.start();
    await this.retransmits.start();
    this.stalls.start();
    this.adoptTimer = setInterval(() => void this.recovery.adoptReturned(this.targets), ADOPT_INTERVAL_MS);
  }

  // Why: the kernel sources stop first, then each launcher ends what is ours (supervised commands).
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.adoptTimer !== null) clearInterval(this.adoptTimer);
    this.adoptTimer = null;
    this.recovery.cancel();
    this.health.stop();
    this.stalls.stop();
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
      const stall = rt.spec.stall !== undefined || rt.spec.syscalls !== undefined ? this.stalls.unavailable : null;
      if (stall !== null) reasons.push(`stall detection and syscall tracing unavailable: ${stall}`);
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
        stalled: this.stalls.stalled(rt),
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
      void this.recovery.recover(rt, `reset by the operator (was ${previousState})`, this.hrtime());
    }
    return { target: name, previousState, action, state: rt.state };
  }

  /** `sentinel trace`: the syscall view of one target or all. */
  trace(name?: string): TraceView[] {
    return this.stalls.snapshot(name);
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

  // Why: counters of the kernel sources (records that reached user space, records lost) for status and tests.
  tracerStats(): { exit: SourceStats | null; retransmit: SourceStats | null } {
    return { exit: this.sources.exit.stats(), retransmit: this.sources.retransmit.stats() };
  }

  private emit(event: TargetAuditEvent): void {
    try {
      this.deps.audit?.(event);
    } catch (e) {
      this.deps.log.error({ err: e, event: event.event }, 'audit callback failed');
    }
  }

  // Why: the first detector to see the exit wins (detection.ts); the target goes down and recovery starts.
  // The recovery action is issued first: the exit is logged and audited right after it, still before
  // `recovery-started` (recovery.ts calls `announce` once, before anything else it logs).
  private handleExit(e: DetectedExit): void {
    const rt = this.targets.find((t) => t.pid === e.pid);
    if (rt === undefined || this.stopped || rt.state === 'stopped') return;
    rt.lastPid = e.pid;
    rt.lastExit = { pid: e.pid, signal: e.signal, exitStatus: e.exitStatus };
    rt.pid = null;
    rt.state = 'down';
    const announce = (): void => {
      const detectionLatencyMs = e.exitNs === null ? null : nsToMs(e.detectedNs - e.exitNs);
      if (detectionLatencyMs !== null) rt.lastDetectionLatencyMs = detectionLatencyMs;
      const fields = { target: rt.spec.name, pid: e.pid, signal: e.signal, exitStatus: e.exitStatus, via: e.via, detectionLatencyMs };
      this.deps.log.warn(fields, 'main process of target exited');
      this.emit({ event: 'exit', ...fields, exitNs: e.exitNs?.toString() ?? null, detectedNs: e.detectedNs.toString() });
    };
    const reason = `main PID ${e.pid} exited (${e.signal !== null ? `signal ${e.signal}` : e.exitStatus !== null ? `status ${e.exitStatus}` : 'gone'})`;
    const since = e.exitNs ?? e.detectedNs;
    if (rt.launcher.exitHandling === undefined) {
      void this.recovery.recover(rt, reason, since, null, announce);
      return;
    }
    rt.state = 'recovering'; // not "down" while systemd is asked: a returned unit must not be adopted meanwhile
    void rt.launcher
      .exitHandling(e)
      .catch((): ExitHandling => ({ by: 'sentinel' }))
      .then((h) => {
        const recovering = this.recovery.recover(rt, reason, since, h.by === 'systemd' ? h.why : null, announce);
        if (h.by === 'systemd' && h.watchdog !== undefined) void this.recordWatchdog(rt.spec.name, h.watchdog);
        const kill = h.by === 'sentinel' ? h.watchdogKill : undefined;
        if (kill !== undefined) {
          const check = (): Promise<void> => this.recordWatchdogKill(rt.spec.name, kill);
          void recovering.then(check, check);
        }
        return recovering;
      });
  }

  // Why: a watchdog kill's thread stacks (in the journal) go to the audit log once systemd's restart is
  // under way: off the restart's path, and with no stop hook in the unit (watchdog-evidence.ts).
  private async recordWatchdog(target: string, exit: WatchdogExit, killed = false): Promise<void> {
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
    const collected = await collectEvidence(exit, { read: journalLinesOf, sleep, now: this.now });
    const found = killed ? { evidence: collected.evidence, note: [KILLED_AFTER_ABORT_TIMEOUT, collected.note].filter((n) => n !== null).join('; ') } : collected;
    const fields = { target, unit: exit.unit, invocationId: exit.invocationId, pid: exit.pid, evidenceLines: found.evidence.length, ...(found.note === null ? {} : { evidenceNote: found.note }) };
    this.deps.log.warn(fields, `${target} hung: watchdog`);
    this.emit(watchdogRecord(target, exit, found));
  }

  // Why: systemd's SIGKILL after TimeoutAbortSec= (the watchdog signal did not end the process) is, to the
  // kernel, a SIGKILL like any other: the sentinel restarted the unit at once. A second after that recovery
  // is over (its `journalctl` is a process: right at READY=1 it ran while the new backend answered its first
  // requests), systemd's own line about the run ("Failed with result 'watchdog'", logged when it reaped the
  // process, before any new start) tells whether it was the watchdog's; read twice, a second apart, in case
  // journald had not stored it yet. A journal that cannot be read is logged, and nothing is recorded as a hang.
  private async recordWatchdogKill(target: string, exit: WatchdogExit): Promise<void> {
    for (let attempt = 0; attempt < 2 && !this.stopped; attempt++) {
      await new Promise((r) => setTimeout(r, 1000).unref());
      let watchdog: boolean;
      try {
        watchdog = await unitResultLogged({ unit: exit.unit, invocationId: exit.invocationId ?? '' }, 'watchdog');
      } catch (e) {
        this.deps.log.warn({ target, unit: exit.unit, invocationId: exit.invocationId, pid: exit.pid, reason: messageOf(e) }, 'cannot tell from the journal whether an exit by SIGKILL ended a watchdog timeout');
        return;
      }
      if (watchdog) {
        await this.recordWatchdog(target, exit, true);
        return;
      }
    }
    if (!this.stopped) this.deps.log.info({ target, unit: exit.unit, invocationId: exit.invocationId, pid: exit.pid }, 'exit by SIGKILL: not a watchdog timeout (systemd did not end the run with result watchdog)');
  }
}
