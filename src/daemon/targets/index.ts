// Keeps the protected targets alive: eBPF exit and retransmit detection with a /proc or
// child-exit fallback, health probes for hung processes, recovery with back-off and a budget.
import { constants as osConstants } from 'node:os';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from 'pino';
import { SentinelError, messageOf } from '../../core/errors.js';
import type { ExitEvent, RetransmitEvent, TracerEvent } from '../../core/bpf-events.js';
import { RestartBudget, RetransmitRateMonitor } from '../../core/recovery-policy.js';
import { BpftraceTracer, bpfProgramPath, ensureTracefs } from '../../adapters/bpftrace.js';
import { ProcPoller, mainPidOfUnit, procIdentity, readPidFile, readProcState, type ProcIdentity } from '../../adapters/proc.js';
import { restartUnit, runRecoveryCommand } from '../../adapters/systemctl.js';
import { httpProbe } from '../../adapters/http-probe.js';
import type { TargetSpec } from './spec.js';

export { parseTargets, targetSchema, type TargetSpec, type TargetSpecInput } from './spec.js';

/** Number of PID slots in bpf/exit.bt ($2..$9); more unit/pid-file targets are polled. */
export const EXIT_PID_SLOTS = 8;
/** Number of port slots in bpf/retransmit.bt ($1..$4). */
export const RETRANSMIT_PORT_SLOTS = 4;

export type TargetKind = 'unit' | 'command' | 'pidFile';
export type DetectionMode = 'ebpf' | 'poll' | 'supervised';
export type TargetState = 'starting' | 'running' | 'recovering' | 'down' | 'failed' | 'stopped';

/** One detection or action, for the daemon's audit log (kind "recover") and for tests/bench. */
export interface TargetAuditEvent {
  event:
    | 'exit'
    | 'recovery-started'
    | 'recovered'
    | 'recovery-failed'
    | 'budget-exhausted'
    | 'health-failed'
    | 'retransmit-alarm'
    | 'retransmit-cleared'
    | 'tracer-down'
    | 'tracer-attached';
  target?: string;
  [field: string]: unknown;
}

export interface TargetStatus {
  name: string;
  kind: TargetKind;
  pid: number | null;
  state: TargetState;
  mode: DetectionMode;
  /** Why detection is not via eBPF (bpftrace missing, not permitted, re-attaching), else null. */
  degraded: string | null;
  restarts: number;
  /** Kernel exit timestamp to the sentinel seeing it (eBPF path only), ms. */
  lastDetectionLatencyMs: number | null;
  /** Exit (or detection) to recovery action started, ms. */
  lastRecoveryLatencyMs: number | null;
  failedReason: string | null;
  retransmitAlarm: boolean;
  healthFailures: number;
}

export interface TargetSupervisorDeps {
  log: Logger;
  audit?: (event: TargetAuditEvent) => void;
  /** Monotonic milliseconds for back-off, budget and rates (default performance.now). */
  now?: () => number;
  /** CLOCK_MONOTONIC ns, the clock of bpftrace's `nsecs` (default process.hrtime.bigint). */
  hrtimeNs?: () => bigint;
  tracer?: { binary?: string; disabled?: boolean; attachTimeoutMs?: number; exitProgram?: string; retransmitProgram?: string };
  /** /proc poll interval of the fallback, ms (default 10). */
  pollIntervalMs?: number;
  /**
   * Use a supervised command's own exit event as a detector (default true). The bench turns it
   * off to time the eBPF path alone, or /proc polling alone.
   */
  childExitEvents?: boolean;
  /** Where a supervised command's stdout/stderr go (default ignore). */
  commandStdio?: 'ignore' | 'inherit';
}

interface TargetRuntime {
  spec: TargetSpec;
  kind: TargetKind;
  pid: number | null;
  /** The main PID before the last exit or kill, to tell a new process from the old one. */
  lastPid: number | null;
  identity: ProcIdentity | null;
  child: ResultPromise | null;
  state: TargetState;
  restarts: number;
  lastDetectionLatencyMs: number | null;
  lastRecoveryLatencyMs: number | null;
  failedReason: string | null;
  budget: RestartBudget;
  rate: RetransmitRateMonitor | null;
  healthFailures: number;
  healthBusy: boolean;
  recovering: boolean;
}

function kindOf(spec: TargetSpec): TargetKind {
  if (spec.unit !== undefined) return 'unit';
  if (spec.command !== undefined) return 'command';
  return 'pidFile';
}

function signalNumber(name: string | null | undefined): number | null {
  if (name === null || name === undefined) return null;
  return (osConstants.signals as Record<string, number | undefined>)[name] ?? null;
}

const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

// Why: a health URL may carry basic-auth credentials; logs and the audit log name the URL without them.
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** The recovery loop for all configured targets; the daemon builds one and calls start/stop. */
export class TargetSupervisor {
  private readonly targets: TargetRuntime[];
  private readonly now: () => number;
  private readonly hrtime: () => bigint;
  private readonly poller: ProcPoller;
  private exitTracer: BpftraceTracer | null = null;
  private retransmitTracer: BpftraceTracer | null = null;
  private tracerReason: string | null = 'not started';
  private retransmitReason: string | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly childExits: boolean;

  constructor(
    specs: TargetSpec[],
    private readonly deps: TargetSupervisorDeps,
  ) {
    this.childExits = deps.childExitEvents ?? true;
    this.now = deps.now ?? (() => performance.now());
    this.hrtime = deps.hrtimeNs ?? (() => process.hrtime.bigint());
    this.poller = new ProcPoller(deps.pollIntervalMs ?? 10, (pid, ns) => this.onPolledExit(pid, ns));
    this.targets = specs.map((spec) => {
      if (spec.command !== undefined && spec.restart !== undefined) {
        throw new SentinelError('config', 'a "command" target is respawned by the sentinel; "restart" is for "unit" or "pidFile" targets', { where: `targets.${spec.name}.restart` });
      }
      const rt = spec.retransmit;
      return {
        spec,
        kind: kindOf(spec),
        pid: null,
        lastPid: null,
        identity: null,
        child: null,
        state: 'starting',
        restarts: 0,
        lastDetectionLatencyMs: null,
        lastRecoveryLatencyMs: null,
        failedReason: null,
        budget: new RestartBudget(spec.budget, spec.backoff),
        rate: rt === undefined ? null : new RetransmitRateMonitor({ threshold: rt.threshold, windowMs: rt.windowMs, clearBelow: rt.clearBelow ?? Math.floor(rt.threshold / 2) }),
        healthFailures: 0,
        healthBusy: false,
        recovering: false,
      };
    });
  }

  // Why: targets first (so their PIDs are known), then the tracers; polling covers the attach gap.
  async start(): Promise<void> {
    this.stopped = false;
    for (const rt of this.targets) {
      try {
        await this.launch(rt);
        rt.state = 'running';
      } catch (e) {
        const why = messageOf(e);
        this.deps.log.error({ target: rt.spec.name, reason: why }, 'target not running at start; recovering');
        rt.state = 'down';
        void this.recover(rt, `not running at start: ${why}`, this.hrtime());
      }
    }
    this.refreshCoverage();
    await this.startTracers();
    for (const rt of this.targets) this.startHealth(rt);
    if (this.targets.some((t) => t.rate !== null)) this.every(250, () => this.tickRates());
  }

  // Why: SIGINT to bpftrace, then the supervised commands are ours to stop (SIGTERM, then SIGKILL).
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.timers.clear();
    this.poller.stop();
    await Promise.all([this.exitTracer?.stop(), this.retransmitTracer?.stop()]);
    await Promise.all(
      this.targets.map(async (rt) => {
        rt.state = 'stopped';
        const child = rt.child;
        rt.pid = null;
        rt.child = null;
        if (child === null || child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await child;
        clearTimeout(timer);
      }),
    );
  }

  status(): TargetStatus[] {
    return this.targets.map((rt) => {
      const covered = this.isCovered(rt);
      const mode: DetectionMode = covered ? 'ebpf' : rt.kind === 'command' && this.childExits ? 'supervised' : 'poll';
      const reasons: string[] = [];
      if (!covered) reasons.push(this.tracerReason ?? (rt.kind !== 'command' && rt.pid !== null ? 'bpftrace re-attaching with the new PID' : 'waiting for the main PID'));
      if (rt.rate !== null && this.retransmitReason !== null) reasons.push(`retransmit detection unavailable: ${this.retransmitReason}`);
      return {
        name: rt.spec.name,
        kind: rt.kind,
        pid: rt.pid,
        state: rt.state,
        mode,
        degraded: reasons.length > 0 ? reasons.join('; ') : null,
        restarts: rt.restarts,
        lastDetectionLatencyMs: rt.lastDetectionLatencyMs,
        lastRecoveryLatencyMs: rt.lastRecoveryLatencyMs,
        failedReason: rt.failedReason,
        retransmitAlarm: rt.rate?.alarm ?? false,
        healthFailures: rt.healthFailures,
      };
    });
  }

  // Why: one line for sd_notify STATUS= and `sentinel status`.
  statusLine(): string {
    if (this.targets.length === 0) return 'targets: none';
    return (
      'targets: ' +
      this.status()
        .map((s) => {
          const lat = s.lastRecoveryLatencyMs === null ? '' : ` last ${s.lastRecoveryLatencyMs.toFixed(1)} ms`;
          const deg = s.degraded === null ? '' : ' (degraded)';
          return `${s.name} ${s.state} pid ${s.pid ?? '-'} ${s.mode}${deg} restarts ${s.restarts}${lat}`;
        })
        .join('; ')
    );
  }

  /** Current main PIDs (for the protection manager). */
  pids(): number[] {
    return this.targets.flatMap((rt) => (rt.pid === null ? [] : [rt.pid]));
  }

  /** Statistics of the tracer processes (events, unparsed lines, restarts). */
  tracerStats(): { exit: BpftraceTracer['stats'] | null; retransmit: BpftraceTracer['stats'] | null; exitTracerPid: number | undefined } {
    return { exit: this.exitTracer?.stats ?? null, retransmit: this.retransmitTracer?.stats ?? null, exitTracerPid: this.exitTracer?.pid };
  }

  private emit(event: TargetAuditEvent): void {
    try {
      this.deps.audit?.(event);
    } catch (e) {
      this.deps.log.error({ err: e, event: event.event }, 'audit callback failed');
    }
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    this.timers.add(t);
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

  private async startTracers(): Promise<void> {
    const { log, tracer } = this.deps;
    if (tracer?.disabled === true) {
      this.tracerReason = 'eBPF disabled by configuration; polling /proc';
      this.retransmitReason = 'eBPF disabled by configuration';
      return;
    }
    try {
      await ensureTracefs();
    } catch (e) {
      this.tracerReason = `${messageOf(e)}; polling /proc`;
      this.retransmitReason = this.tracerReason;
      log.warn({ reason: this.tracerReason }, 'eBPF unavailable: falling back to polling');
      return;
    }
    const common = { log, binary: tracer?.binary, attachTimeoutMs: tracer?.attachTimeoutMs };
    this.exitTracer = new BpftraceTracer({
      ...common,
      name: 'exit',
      program: tracer?.exitProgram ?? bpfProgramPath('exit.bt'),
      args: this.exitArgs(),
      onEvent: (e) => this.onTracerEvent(e),
      onState: (state, reason) => this.onTracerState('exit', state, reason),
    });
    try {
      await this.exitTracer.start();
      this.tracerReason = null;
      this.refreshWatch();
    } catch (e) {
      this.tracerReason = `${messageOf(e)}; polling /proc`;
      log.warn({ reason: this.tracerReason }, 'eBPF exit detection unavailable: falling back to polling');
      this.exitTracer = null;
      this.refreshCoverage();
    }
    const ports = [...new Set(this.targets.filter((t) => t.rate !== null).map((t) => t.spec.port))];
    if (ports.length === 0) return;
    if (ports.length > RETRANSMIT_PORT_SLOTS) log.warn({ ports }, `only the first ${RETRANSMIT_PORT_SLOTS} ports are watched for retransmits`);
    const args = ports.slice(0, RETRANSMIT_PORT_SLOTS).map(String);
    while (args.length < RETRANSMIT_PORT_SLOTS) args.push('0');
    this.retransmitTracer = new BpftraceTracer({
      ...common,
      name: 'retransmit',
      program: tracer?.retransmitProgram ?? bpfProgramPath('retransmit.bt'),
      args,
      onEvent: (e) => this.onTracerEvent(e),
      onState: (state, reason) => this.onTracerState('retransmit', state, reason),
    });
    try {
      await this.retransmitTracer.start();
      this.retransmitReason = null;
    } catch (e) {
      this.retransmitReason = messageOf(e);
      log.warn({ reason: this.retransmitReason }, 'eBPF retransmit detection unavailable');
      this.retransmitTracer = null;
    }
  }

  private onTracerState(name: 'exit' | 'retransmit', state: 'attached' | 'down', reason: string): void {
    if (this.stopped) return;
    this.emit({ event: state === 'attached' ? 'tracer-attached' : 'tracer-down', tracer: name, reason });
    if (name === 'retransmit') {
      this.retransmitReason = state === 'attached' ? null : reason;
      return;
    }
    this.tracerReason = state === 'attached' ? null : `${reason}; polling /proc until bpftrace is back`;
    if (state === 'attached') this.refreshWatch();
    else this.refreshCoverage();
  }

  /** Arguments of bpf/exit.bt: our own PID (children = supervised commands), then PID slots. */
  private exitArgs(): string[] {
    const pids = this.targets.filter((t) => t.kind !== 'command' && t.pid !== null).map((t) => String(t.pid));
    const slots = pids.slice(0, EXIT_PID_SLOTS);
    while (slots.length < EXIT_PID_SLOTS) slots.push('0');
    return [String(process.pid), ...slots];
  }

  private isCovered(rt: TargetRuntime): boolean {
    const args = this.exitTracer?.attachedArgs ?? null;
    if (args === null || rt.pid === null) return false;
    if (rt.kind === 'command') return args[0] === String(process.pid);
    return args.slice(1).includes(String(rt.pid));
  }

  // Why: a new main PID needs a re-attached bpftrace; until it is live the PID is polled.
  private refreshWatch(): void {
    this.refreshCoverage();
    const tracer = this.exitTracer;
    if (tracer === null || this.stopped) return;
    tracer.setArgs(this.exitArgs()).then(
      () => this.refreshCoverage(),
      (e: unknown) => {
        this.deps.log.error({ reason: messageOf(e) }, 'bpftrace re-attach with new PIDs failed; polling');
        this.refreshCoverage();
      },
    );
  }

  /** Poll exactly the PIDs that neither eBPF nor a child exit event covers. */
  private refreshCoverage(): void {
    if (this.stopped) return;
    for (const rt of this.targets) {
      if (rt.pid === null || rt.identity === null) continue;
      const needsPoll = !this.isCovered(rt) && (rt.kind !== 'command' || !this.childExits);
      if (needsPoll && !this.poller.has(rt.pid)) this.poller.watch(rt.identity);
      if (!needsPoll && this.poller.has(rt.pid)) this.poller.unwatch(rt.pid);
    }
  }

  private onTracerEvent(e: TracerEvent): void {
    if (this.stopped) return;
    if (e.kind === 'exit') this.onKernelExit(e);
    else if (e.kind === 'retransmit') this.onRetransmit(e);
  }

  private onKernelExit(e: ExitEvent): void {
    const rt = this.targets.find((t) => t.pid === e.pid);
    if (rt === undefined) return;
    this.handleExit(rt, e.pid, 'ebpf', { signal: e.signal, exitStatus: e.exitStatus, comm: e.comm }, e.ns);
  }

  private onPolledExit(pid: number, detectedNs: bigint): void {
    const rt = this.targets.find((t) => t.pid === pid);
    if (rt === undefined || this.stopped) return;
    this.handleExit(rt, pid, 'poll', { signal: null, exitStatus: null }, null, detectedNs);
  }

  // Why: the first detector to see the exit wins; the others find the PID already cleared.
  private handleExit(
    rt: TargetRuntime,
    pid: number,
    via: 'ebpf' | 'poll' | 'child',
    info: { signal: number | null; exitStatus: number | null; comm?: string },
    exitNs: bigint | null,
    detectedNs = this.hrtime(),
  ): void {
    if (rt.pid !== pid || this.stopped || rt.state === 'stopped') return;
    rt.lastPid = pid;
    rt.pid = null;
    rt.identity = null;
    rt.state = 'down';
    this.poller.unwatch(pid);
    const detectionLatencyMs = exitNs === null ? null : nsToMs(detectedNs - exitNs);
    if (detectionLatencyMs !== null) rt.lastDetectionLatencyMs = detectionLatencyMs;
    const fields = { target: rt.spec.name, pid, signal: info.signal, exitStatus: info.exitStatus, via, detectionLatencyMs };
    this.deps.log.warn(fields, 'main process of target exited');
    this.emit({ event: 'exit', ...fields, exitNs: exitNs?.toString() ?? null, detectedNs: detectedNs.toString() });
    void this.recover(rt, `main PID ${pid} exited (${info.signal !== null ? `signal ${info.signal}` : info.exitStatus !== null ? `status ${info.exitStatus}` : 'gone'})`, exitNs ?? detectedNs);
  }

  // Why: one recovery at a time per target, through the budget and back-off, audited with latency.
  private async recover(rt: TargetRuntime, reason: string, sinceNs: bigint): Promise<void> {
    if (rt.recovering || this.stopped) return;
    rt.recovering = true;
    let retry: string | null = null;
    try {
      const decision = rt.budget.decide(this.now());
      if (!decision.allow) {
        rt.state = 'failed';
        rt.failedReason = `${decision.reason} (last: ${reason})`;
        this.deps.log.error({ target: rt.spec.name, reason: rt.failedReason }, 'target not restarted: restart budget exhausted');
        this.emit({ event: 'budget-exhausted', target: rt.spec.name, reason: rt.failedReason, recentRestarts: decision.recentRestarts });
        return;
      }
      rt.state = 'recovering';
      if (decision.delayMs > 0) {
        this.deps.log.info({ target: rt.spec.name, delayMs: decision.delayMs, recentRestarts: decision.recentRestarts }, 'backing off before restart');
        await this.sleep(decision.delayMs);
        if (this.stopped) return;
      }
      rt.budget.record(this.now());
      const startedNs = this.hrtime();
      const latencyMs = nsToMs(startedNs - sinceNs);
      rt.lastRecoveryLatencyMs = latencyMs;
      const action = rt.kind === 'command' ? 'respawn' : rt.spec.restart !== undefined ? 'restart command' : 'systemctl restart';
      this.deps.log.info({ target: rt.spec.name, action, reason, latencyMs }, 'recovery action started');
      this.emit({ event: 'recovery-started', target: rt.spec.name, action, reason, latencyMs, sinceNs: sinceNs.toString(), startedNs: startedNs.toString(), backoffMs: decision.delayMs });
      const t0 = this.now();
      try {
        await this.killHung(rt);
        await this.launch(rt);
        if (this.stopped) {
          // stop() ran while the action was in flight: do not leave the new process behind
          if (rt.kind === 'command') await this.killHung(rt);
          return;
        }
        rt.restarts++;
        rt.state = 'running';
        rt.failedReason = null;
        rt.healthFailures = 0;
        this.deps.log.info({ target: rt.spec.name, pid: rt.pid, actionMs: this.now() - t0, restarts: rt.restarts }, 'target recovered');
        this.emit({ event: 'recovered', target: rt.spec.name, pid: rt.pid, actionMs: this.now() - t0, restarts: rt.restarts });
        this.refreshWatch();
      } catch (e) {
        const why = messageOf(e);
        rt.state = 'down';
        rt.failedReason = why;
        this.deps.log.error({ target: rt.spec.name, reason: why }, 'recovery action failed; will retry within the budget');
        this.emit({ event: 'recovery-failed', target: rt.spec.name, reason: why });
        retry = why;
      }
    } finally {
      rt.recovering = false;
    }
    if (retry !== null && !this.stopped) await this.recover(rt, `previous recovery failed: ${retry}`, this.hrtime());
  }

  /** A hung or retransmitting process is killed before its replacement starts. */
  private async killHung(rt: TargetRuntime): Promise<void> {
    const pid = rt.pid;
    const child = rt.child;
    if (pid !== null) rt.lastPid = pid;
    rt.pid = null;
    rt.identity = null;
    if (pid !== null) this.poller.unwatch(pid);
    if (rt.kind === 'unit') return; // systemctl restart stops the old process itself
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await child;
    } else if (pid !== null && (await readProcState(pid)).alive) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rt.child = null;
  }

  /** Start (command), restart (unit, pid file) or find the target's main process. */
  private async launch(rt: TargetRuntime): Promise<void> {
    const { spec } = rt;
    let pid: number;
    if (rt.kind === 'command') {
      const [file, ...args] = spec.command ?? [];
      if (file === undefined) throw new SentinelError('config', 'empty command', { where: `targets.${spec.name}.command` });
      const child = execa(file, args, { reject: false, stdin: 'ignore', stdout: this.deps.commandStdio ?? 'ignore', stderr: this.deps.commandStdio ?? 'ignore', cleanup: true });
      if (child.pid === undefined) {
        const r = await child;
        throw new SentinelError('not-found', `cannot start command: ${r.shortMessage}`, { where: `targets.${spec.name}.command` });
      }
      pid = child.pid;
      rt.child = child;
      if (this.childExits) {
        child.on('exit', (code, signal) => {
          this.handleExit(rt, pid, 'child', { signal: signalNumber(signal), exitStatus: code }, null);
        });
      }
    } else if (rt.kind === 'unit') {
      const unit = spec.unit ?? '';
      if (rt.restarts > 0 || rt.state !== 'starting') await (spec.restart !== undefined ? runRecoveryCommand(spec.restart, 60_000, unit) : restartUnit(unit));
      pid = await mainPidOfUnit(unit);
      if (pid === 0) throw new SentinelError('unavailable', 'unit has no running main process', { where: unit });
    } else {
      const file = spec.pidFile ?? '';
      const adopted = rt.state === 'starting' ? null : await this.restartedElsewhere(file, rt.lastPid);
      if (adopted !== null) {
        this.deps.log.info({ target: spec.name, pid: adopted }, 'pid file already names a new live process; adopting it instead of restarting');
      } else if (rt.state !== 'starting') {
        await runRecoveryCommand(spec.restart ?? [], 60_000, file);
      }
      pid = adopted ?? (await this.waitForPidFile(file, rt.state === 'starting' ? 0 : 5000));
    }
    const identity = await procIdentity(pid);
    if (identity === null) throw new SentinelError('unavailable', `main PID ${pid} is not running`, { where: spec.name });
    rt.pid = pid;
    rt.identity = identity;
    rt.healthFailures = 0;
  }

  // Why: an operator (or the program's own supervisor) may have restarted it already; a second
  // instance would only fight the first one for its port.
  private async restartedElsewhere(file: string, lastPid: number | null): Promise<number | null> {
    try {
      const pid = await readPidFile(file);
      return pid !== lastPid && (await readProcState(pid)).alive ? pid : null;
    } catch {
      return null;
    }
  }

  // Why: a restarted program writes its pid file a little after starting; wait, bounded.
  private async waitForPidFile(file: string, waitMs: number): Promise<number> {
    const deadline = this.now() + waitMs;
    for (;;) {
      try {
        const pid = await readPidFile(file);
        if ((await readProcState(pid)).alive) return pid;
        if (this.now() >= deadline) throw new SentinelError('unavailable', `pid file names PID ${pid}, which is not running`, { where: file });
      } catch (e) {
        if (this.now() >= deadline) throw e;
      }
      await this.sleep(20);
    }
  }

  private startHealth(rt: TargetRuntime): void {
    const health = rt.spec.health;
    if (health === undefined) return;
    this.every(health.intervalMs, () => void this.probe(rt));
  }

  // Why: a live but hung process (deadlock, stuck GIL) is only visible to a request.
  private async probe(rt: TargetRuntime): Promise<void> {
    const health = rt.spec.health;
    if (health === undefined || rt.healthBusy || rt.state !== 'running' || rt.pid === null || this.stopped) return;
    rt.healthBusy = true;
    const pid = rt.pid;
    const startNs = this.hrtime();
    try {
      const r = await httpProbe(health.url, health.timeoutMs);
      if (rt.pid !== pid || rt.state !== 'running') return;
      if (r.ok) {
        rt.healthFailures = 0;
        return;
      }
      rt.healthFailures++;
      this.deps.log.warn({ target: rt.spec.name, pid, error: r.error, failures: rt.healthFailures, of: health.failures }, 'health probe failed');
      if (rt.healthFailures < health.failures) return;
      const failures = rt.healthFailures;
      rt.healthFailures = 0;
      this.emit({ event: 'health-failed', target: rt.spec.name, pid, failures, error: r.error, url: withoutCredentials(health.url) });
      void this.recover(rt, `health probe failed ${failures} times in a row (${r.error})`, startNs);
    } finally {
      rt.healthBusy = false;
    }
  }

  private onRetransmit(e: RetransmitEvent): void {
    const nowMs = this.now();
    for (const rt of this.targets) {
      if (rt.rate === null || rt.spec.port !== e.sport) continue;
      const tr = rt.rate.add(nowMs);
      if (tr?.kind === 'raised') this.onRateRaised(rt, tr.count, e.ns);
    }
  }

  private tickRates(): void {
    const nowMs = this.now();
    for (const rt of this.targets) {
      const tr = rt.rate?.tick(nowMs) ?? null;
      if (tr?.kind === 'cleared') {
        this.deps.log.info({ target: rt.spec.name, count: tr.count }, 'retransmit rate back to normal');
        this.emit({ event: 'retransmit-cleared', target: rt.spec.name, port: rt.spec.port, count: tr.count });
      }
    }
  }

  private onRateRaised(rt: TargetRuntime, count: number, ns: bigint): void {
    const cfg = rt.spec.retransmit;
    if (cfg === undefined) return;
    const fields = { target: rt.spec.name, port: rt.spec.port, count, windowMs: cfg.windowMs, threshold: cfg.threshold, action: cfg.action };
    this.deps.log.warn(fields, 'TCP retransmit rate above threshold');
    this.emit({ event: 'retransmit-alarm', ...fields });
    if (cfg.action === 'restart' && rt.state === 'running') void this.recover(rt, `${count} TCP retransmits on port ${rt.spec.port} within ${cfg.windowMs} ms`, ns);
  }
}
