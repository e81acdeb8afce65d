// The daemon's one eBPF engine: opened once at start, shared by the target supervisor (exits,
// retransmits), the tamper watch (who changed inode flags) and the syscall tracing of the stall
// detector and `sentinel trace`; closed by the daemon's part stack after all of them (docs/EBPF.md#engine).
//
// What its users call (keep this small; every call is a map operation, nothing re-attaches):
//   new EbpfHost({ log, disabled? }), start()   open and attach once; never throws: `unavailable` says why not
//   unavailable                                 null while the engine runs; else why (then callers poll /proc)
//   on(kind, fn) -> off()                        records of one kind: 'exit' | 'slow' | 'stall-end' | 'retransmit' | 'flags'
//   watchExit(pid) / unwatchExit(pid)            report the whole-process exit of pid (the kernel forgets a PID when it exits)
//   allocateSlot() / releaseSlot(slot)           a per-target slot (syscall histogram and main-thread loop state)
//   traceSyscalls(pid, slot, tracing | null)     trace pid's syscalls into slot (null stops); one map entry with its exit watch
//   loopState(slot), histogram(slot), clearSlot(slot)
//   watchPort(port, gapMs) / unwatchPort(port) / portCount(port)   retransmits counted per local port in the kernel
//   watchFlags(stDev | null)                     flag-changing ioctls on the filesystem with this st_dev
//   status(), statusLine()                       mode, why, load/attach time, BTF, kernel counters
import type { Logger } from 'pino';
import { messageOf } from '../core/errors.js';
import type { BpfRecord, BpfStats, LoopState } from '../core/bpf-records.js';
import { ALL_GROUPS, BpfEngine, type SyscallTracing } from '../adapters/bpf-engine.js';

type RecordOf<K extends BpfRecord['kind']> = Extract<BpfRecord, { kind: K }>;

/** What the daemon reports about its engine (`status`, STATUS=, doctor's neighbour). */
export interface EbpfStatus {
  mode: 'ebpf' | 'off';
  /** Why there is no engine (then exits are polled from /proc), or null. */
  reason: string | null;
  groups: string[];
  loadMs: number | null;
  attachMs: number | null;
  btf: string | null;
  /** PIDs whose exit is watched in the kernel, and PIDs whose syscalls are traced. */
  exitWatched: number;
  syscallsTraced: number;
  kernel: BpfStats | null;
}

interface PidWatch {
  exit: boolean;
  slot: number;
  tracing: SyscallTracing | null;
}

// Why: exits, syscall tracing and the stall detector all key the kernel's watch map by tgid; one
// owner merges what each user wants of a PID into its one map entry, so none overwrites another's.
export class EbpfHost {
  private engine: BpfEngine | null = null;
  private reasonText: string;
  private readonly handlers = new Map<BpfRecord['kind'], Set<(r: BpfRecord) => void>>();
  private readonly pids = new Map<number, PidWatch>();

  constructor(
    private readonly opts: {
      log: Logger;
      /** Why the engine is not to be used at all (no targets, configuration): then nothing is loaded. */
      disabled?: string | null;
      /** Another BPF object (tests: a missing one shows the fallback). */
      objectPath?: string;
    },
  ) {
    this.reasonText = opts.disabled ?? 'not started';
  }

  /** Turned off on purpose (not a failure to load): nothing to warn about. */
  get disabled(): boolean {
    return this.opts.disabled != null;
  }

  /** Open the object and attach every group; on failure the daemon polls and says why. */
  start(): Promise<void> {
    if (this.engine !== null || this.opts.disabled != null) return Promise.resolve();
    try {
      this.engine = BpfEngine.open({ groups: ALL_GROUPS, ...(this.opts.objectPath !== undefined ? { objectPath: this.opts.objectPath } : {}), onRecord: (r) => this.dispatch(r), onUnknown: (n) => this.opts.log.warn({ event: 'ebpf-unknown-records', count: n }, 'records of an unknown kind from the BPF object (stale build?)') });
      this.reasonText = '';
      const { loadMs, attachMs } = this.engine.timing;
      this.opts.log.info({ event: 'ebpf', ok: true, groups: ALL_GROUPS, loadMs: Math.round(loadMs * 10) / 10, attachMs: Math.round(attachMs * 10) / 10, btf: this.engine.btf }, 'eBPF engine loaded');
    } catch (e) {
      this.reasonText = messageOf(e);
      this.opts.log.warn({ event: 'ebpf', ok: false, reason: this.reasonText }, 'no eBPF engine: exits are polled from /proc');
    }
    return Promise.resolve();
  }

  get unavailable(): string | null {
    return this.engine === null ? this.reasonText : null;
  }

  /** Subscribe to records of one kind; returns the unsubscribe. */
  on<K extends BpfRecord['kind']>(kind: K, fn: (r: RecordOf<K>) => void): () => void {
    const set = this.handlers.get(kind) ?? new Set();
    this.handlers.set(kind, set);
    const h = fn as (r: BpfRecord) => void;
    set.add(h);
    return () => set.delete(h);
  }

  /** Watch the whole-process exit of `pid`; false when there is no engine. */
  watchExit(pid: number): boolean {
    return this.update(pid, (w) => ({ ...w, exit: true }));
  }

  unwatchExit(pid: number): void {
    this.update(pid, (w) => ({ ...w, exit: false }));
  }

  allocateSlot(): number {
    return this.live().allocateSlot();
  }

  releaseSlot(slot: number): void {
    this.engine?.releaseSlot(slot);
  }

  /** Trace the syscalls of `pid` into `slot` (histogram, slow syscalls, loop state); null stops. */
  traceSyscalls(pid: number, slot: number, tracing: SyscallTracing | null): boolean {
    return this.update(pid, (w) => ({ ...w, slot, tracing }), tracing !== null);
  }

  loopState(slot: number): LoopState {
    return this.live().loopState(slot);
  }

  histogram(slot: number): number[] {
    return this.live().histogram(slot);
  }

  clearSlot(slot: number): void {
    this.live().clearSlot(slot);
  }

  watchPort(port: number, gapMs: number): boolean {
    if (this.engine === null) return false;
    this.engine.watchPort(port, gapMs);
    return true;
  }

  unwatchPort(port: number): void {
    this.engine?.unwatchPort(port);
  }

  portCount(port: number): number | null {
    return this.engine?.portCount(port) ?? null;
  }

  watchFlags(stDev: number | null): boolean {
    if (this.engine === null) return false;
    this.engine.watchFlags(stDev);
    return true;
  }

  status(): EbpfStatus {
    const e = this.engine;
    const traced = [...this.pids.values()];
    return {
      mode: e === null ? 'off' : 'ebpf',
      reason: this.unavailable,
      groups: e === null ? [] : [...e.groups],
      loadMs: e === null ? null : Math.round(e.timing.loadMs * 10) / 10,
      attachMs: e === null ? null : Math.round(e.timing.attachMs * 10) / 10,
      btf: e?.btf ?? null,
      exitWatched: traced.filter((w) => w.exit).length,
      syscallsTraced: traced.filter((w) => w.tracing !== null).length,
      kernel: e?.stats() ?? null,
    };
  }

  statusLine(): string {
    const s = this.status();
    return s.mode === 'ebpf' ? `ebpf: on (${s.groups.join(', ')}; loaded in ${String(s.loadMs)} ms)` : `ebpf: off, polling /proc (${s.reason ?? ''})`;
  }

  close(): Promise<void> {
    this.engine?.close();
    this.engine = null;
    this.reasonText = 'closed';
    this.pids.clear();
    return Promise.resolve();
  }

  private live(): BpfEngine {
    if (this.engine === null) throw new Error(`no eBPF engine: ${this.reasonText}`);
    return this.engine;
  }

  // One map entry per PID: what every user wants of it, written at once (a new tracing resets the loop state).
  private update(pid: number, change: (w: PidWatch) => PidWatch, resetLoop = false): boolean {
    const engine = this.engine;
    if (engine === null) return false;
    const next = change(this.pids.get(pid) ?? { exit: false, slot: 0, tracing: null });
    if (!next.exit && next.tracing === null) {
      this.pids.delete(pid);
      engine.unwatch(pid);
      return true;
    }
    this.pids.set(pid, next);
    engine.watch(pid, { slot: next.slot, exit: next.exit, ...(next.tracing !== null ? { syscalls: next.tracing } : {}), keepLoopState: !resetLoop });
    return true;
  }

  private dispatch(r: BpfRecord): void {
    // The kernel dropped an exited PID from its map; so does the host (a reused PID is someone else).
    if (r.kind === 'exit') this.pids.delete(r.pid);
    for (const h of this.handlers.get(r.kind) ?? []) {
      try {
        h(r);
      } catch (e) {
        this.opts.log.error({ event: 'ebpf-handler-failed', kind: r.kind, err: messageOf(e) }, 'an eBPF record handler threw');
      }
    }
  }
}
