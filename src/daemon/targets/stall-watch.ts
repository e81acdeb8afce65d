// The stall detector and the syscall view of each traced target (docs/EBPF.md#stalls): the target's
// main PID is traced in a slot of the daemon's eBPF engine; its loop state is read exactly when a
// stall could first be true (stall-policy.ts), a stall is alerted once per busy stretch and, with
// action "restart", recovered through the budget (detector 'stall'). Slow-syscall and stall-end
// records are kept for `sentinel trace`.
import { judgeLoop } from '../../core/stall-policy.js';
import { SentinelError, messageOf } from '../../core/errors.js';
import type { BpfRecord, LoopState, SlowSyscallRecord, StallEndRecord } from '../../core/bpf-records.js';
import { syscallName } from '../../adapters/bpf-build.js';
import { syscallTracingOf } from './spec.js';
import type { TriggerDeps, TriggerTarget } from './triggers.js';
import type { TraceView } from '../../core/trace-view.js';

/** What the stall detector needs of the daemon's eBPF engine (the engine host implements it). */
export interface SyscallTracer {
  /** Null while the engine runs; else why there is none. */
  readonly unavailable: string | null;
  on<K extends 'slow' | 'stall-end'>(kind: K, fn: (r: Extract<BpfRecord, { kind: K }>) => void): () => void;
  allocateSlot(): number;
  releaseSlot(slot: number): void;
  traceSyscalls(pid: number, slot: number, tracing: { slowNs: number; stallNs: number; slowPerSec: number } | null): boolean;
  loopState(slot: number): LoopState;
  histogram(slot: number): number[];
  clearSlot(slot: number): void;
}

/** Slow syscalls kept per target for `sentinel trace`. */
const KEPT_SLOW = 16;

interface Traced {
  target: TriggerTarget;
  slot: number | null;
  pid: number | null;
  timer: NodeJS.Timeout | null;
  /** busySinceNs of the stretch already reported, so one stall is reported once. */
  reportedSince: bigint | null;
  /** A reported stall whose end the kernel has not yet sent (a check may see it over first). */
  awaitingEnd: boolean;
  stalls: number;
  lastStallMs: number | null;
  slow: { r: SlowSyscallRecord; at: bigint }[];
  slowTotal: number;
}

const ms = (ns: bigint): number => Math.round(Number(ns) / 1e4) / 100;

// Why: one owner of the tracing slots of the targets, so a restarted target's new PID is traced in
// the same slot and the histogram survives the restart.
export class StallWatch {
  private readonly traced = new Map<string, Traced>();
  private readonly offs: (() => void)[] = [];
  private readonly names: string[];
  private running = false;

  constructor(
    targets: readonly TriggerTarget[],
    private readonly tracer: SyscallTracer | null,
    private readonly deps: TriggerDeps,
  ) {
    this.names = targets.map((t) => t.spec.name);
    for (const t of targets) {
      if (syscallTracingOf(t.spec) !== null) this.traced.set(t.spec.name, { target: t, slot: null, pid: null, timer: null, reportedSince: null, awaitingEnd: false, stalls: 0, lastStallMs: null, slow: [], slowTotal: 0 });
    }
  }

  /** Why stall detection and tracing are off (no engine), or null; also null when no target asks for them. */
  get unavailable(): string | null {
    if (this.traced.size === 0) return null;
    if (this.tracer === null) return 'this daemon has no eBPF engine';
    return this.tracer.unavailable;
  }

  start(): void {
    if (this.running || this.traced.size === 0 || this.unavailable !== null || this.tracer === null) return;
    this.running = true;
    this.offs.push(
      this.tracer.on('slow', (r) => this.onSlow(r)),
      this.tracer.on('stall-end', (r) => this.onStallEnd(r)),
    );
    for (const tr of this.traced.values()) this.sync(tr.target);
  }

  stop(): void {
    this.running = false;
    for (const off of this.offs.splice(0)) off();
    for (const tr of this.traced.values()) {
      if (tr.timer !== null) clearTimeout(tr.timer);
      tr.timer = null;
      try {
        if (tr.pid !== null) this.tracer?.traceSyscalls(tr.pid, tr.slot ?? 0, null);
        if (tr.slot !== null) this.tracer?.releaseSlot(tr.slot);
      } catch (e) {
        this.deps.log.debug({ target: tr.target.spec.name, err: messageOf(e) }, 'syscall tracing not undone (engine closed)');
      }
      tr.pid = null;
      tr.slot = null;
    }
  }

  /** The target's main PID may have changed: trace the current one (one map write; the loop state starts afresh). */
  sync(target: TriggerTarget): void {
    const tr = this.traced.get(target.spec.name);
    const tracer = this.tracer;
    if (tr === undefined || tracer === null || !this.running || tr.pid === target.pid) return;
    const cfg = syscallTracingOf(target.spec);
    if (cfg === null) return;
    try {
      if (tr.pid !== null && tr.slot !== null) tracer.traceSyscalls(tr.pid, tr.slot, null);
      tr.pid = null;
      if (target.pid === null) return;
      tr.slot ??= tracer.allocateSlot();
      const stallNs = (target.spec.stall?.thresholdMs ?? 0) * 1e6;
      tracer.traceSyscalls(target.pid, tr.slot, { slowNs: cfg.slowMs * 1e6, stallNs, slowPerSec: cfg.slowPerSec });
      tr.pid = target.pid;
      tr.reportedSince = null;
      tr.awaitingEnd = false;
      this.schedule(tr, 0);
    } catch (e) {
      this.deps.log.error({ target: target.spec.name, pid: target.pid, err: messageOf(e) }, 'syscall tracing of the target failed');
    }
  }

  /** status(): whether the target's main thread is in a stall right now. */
  stalled(target: TriggerTarget): boolean {
    const tr = this.traced.get(target.spec.name);
    return tr?.reportedSince !== null && tr?.reportedSince !== undefined;
  }

  // Why: `sentinel trace`: what the kernel counted for each traced target, plus the kept records.
  snapshot(name?: string): TraceView[] {
    const why = this.unavailable;
    if (name !== undefined && !this.names.includes(name)) throw new SentinelError('not-found', `no target named "${name}" (targets: ${this.names.join(', ') || 'none'})`, { where: 'target' });
    if (why !== null) throw new SentinelError('unavailable', `no eBPF engine: ${why}; the daemon polls /proc and traces no syscalls`, { where: 'trace' });
    const now = this.deps.hrtimeNs();
    return this.names.filter((n) => name === undefined || n === name).map((n) => this.view(n, now));
  }

  private view(name: string, now: bigint): TraceView {
    const tr = this.traced.get(name);
    const empty = { target: name, pid: null, slowMs: null, histogram: [], syscalls: 0, slow: [], slowTotal: 0, slowDropped: 0, stall: null };
    if (tr === undefined) return { ...empty, notTraced: 'neither "stall" nor "syscalls" is configured for it' };
    const cfg = syscallTracingOf(tr.target.spec);
    if (tr.slot === null || this.tracer === null) return { ...empty, pid: tr.target.pid, notTraced: 'no main process to trace right now', slowMs: cfg?.slowMs ?? null };
    const state = this.tracer.loopState(tr.slot);
    const stall = tr.target.spec.stall;
    const busy = stall === undefined ? null : judgeLoop(state, now, BigInt(stall.thresholdMs) * 1_000_000n);
    return {
      target: name,
      pid: tr.pid,
      notTraced: null,
      slowMs: cfg?.slowMs ?? null,
      histogram: this.tracer.histogram(tr.slot),
      syscalls: state.syscalls,
      slow: tr.slow.map(({ r, at }) => ({ syscall: syscallName(r.nr), nr: r.nr, tid: r.tid, durationMs: ms(r.durationNs), agoMs: Math.round(ms(now - at)) })),
      slowTotal: tr.slowTotal,
      slowDropped: state.slowDropped,
      stall: stall === undefined || busy === null ? null : { thresholdMs: stall.thresholdMs, action: stall.action, inWait: state.inWait, armed: state.armed, busyMs: ms(busy.busyNs), maxBusyMs: ms(state.maxBusyNs), stalled: busy.stalled, stalls: tr.stalls, lastStallMs: tr.lastStallMs, currentSyscall: state.currentNr === null ? null : syscallName(state.currentNr) },
    };
  }

  private schedule(tr: Traced, delayMs: number): void {
    if (tr.timer !== null) clearTimeout(tr.timer);
    if (tr.target.spec.stall === undefined) return;
    tr.timer = setTimeout(() => this.check(tr), Math.max(0, Math.ceil(delayMs)));
    tr.timer.unref();
  }

  // Why: reads the slot only when a stall could first be true; a stall is acted on once per busy stretch.
  private check(tr: Traced): void {
    tr.timer = null;
    const stall = tr.target.spec.stall;
    if (!this.running || stall === undefined || tr.slot === null || tr.pid === null || this.tracer === null) return;
    const now = this.deps.hrtimeNs();
    const thresholdNs = BigInt(stall.thresholdMs) * 1_000_000n;
    let state: LoopState;
    try {
      state = this.tracer.loopState(tr.slot);
    } catch (e) {
      this.deps.log.error({ target: tr.target.spec.name, err: messageOf(e) }, 'loop state unreadable');
      this.schedule(tr, stall.thresholdMs);
      return;
    }
    const v = judgeLoop(state, now, thresholdNs);
    if (v.stalled && tr.reportedSince !== state.busySinceNs && state.pid === tr.pid) this.report(tr, state, v.busyNs, now);
    else if (!v.stalled) tr.reportedSince = null;
    this.schedule(tr, Number(v.nextCheckNs - now) / 1e6);
  }

  private report(tr: Traced, state: LoopState, busyNs: bigint, now: bigint): void {
    const stall = tr.target.spec.stall;
    if (stall === undefined) return;
    tr.reportedSince = state.busySinceNs;
    tr.awaitingEnd = true;
    tr.stalls++;
    const t = tr.target;
    const syscall = state.currentNr === null ? null : syscallName(state.currentNr);
    const fields = { target: t.spec.name, pid: tr.pid, detector: 'stall', busyMs: ms(busyNs), thresholdMs: stall.thresholdMs, action: stall.action, syscall, detectionLatencyMs: ms(now - state.busySinceNs - BigInt(stall.thresholdMs) * 1_000_000n) };
    this.deps.log.warn(fields, 'main thread stalled: away from its wait syscall longer than the threshold');
    this.deps.emit({ event: 'stall', ...fields, busySinceNs: state.busySinceNs.toString(), detectedNs: now.toString() });
    if (stall.action === 'restart' && t.state === 'running' && t.pid === tr.pid) {
      this.deps.recover(t, `main thread stalled: away from its wait syscall for ${Math.round(ms(busyNs))} ms (threshold ${stall.thresholdMs} ms)`, state.busySinceNs + BigInt(stall.thresholdMs) * 1_000_000n);
    }
  }

  private byPid(pid: number): Traced | undefined {
    for (const tr of this.traced.values()) if (tr.pid === pid) return tr;
    return undefined;
  }

  private onSlow(r: SlowSyscallRecord): void {
    const tr = this.byPid(r.pid);
    if (tr === undefined) return;
    tr.slowTotal++;
    tr.slow.push({ r, at: r.ns });
    if (tr.slow.length > KEPT_SLOW) tr.slow.shift();
  }

  private onStallEnd(r: StallEndRecord): void {
    const tr = this.byPid(r.pid);
    if (tr === undefined) return;
    tr.lastStallMs = ms(r.busyNs);
    const reported = tr.awaitingEnd;
    tr.reportedSince = null;
    tr.awaitingEnd = false;
    if (!reported) return;
    const fields = { target: tr.target.spec.name, pid: r.pid, detector: 'stall', busyMs: ms(r.busyNs), syscall: syscallName(r.nr) };
    this.deps.log.info(fields, 'main thread back in its wait syscall after a stall');
    this.deps.emit({ event: 'stall-ended', ...fields });
  }
}
