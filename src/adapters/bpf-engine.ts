// The in-process eBPF engine: the native addon loads bpf/build/sentinel.bpf.o through libbpf and
// delivers its ring buffer on the event loop; this wraps it in typed calls and decoded records.
// Maps are updated at run time (a restarted target's new PID is one map write, nothing re-attaches).
// docs/EBPF.md#engine.
import { existsSync } from 'node:fs';
import { SentinelError, messageOf } from '../core/errors.js';
import { codeForErrno, errnoOf } from '../core/errno.js';
import {
  MAX_SLOTS,
  WATCH_EXIT,
  WATCH_SYSCALLS,
  decodeHistogram,
  decodeLoopState,
  decodeRecords,
  exitRecord,
  decodeStats,
  type BpfRecord,
  type BpfStats,
  type LoopState,
} from '../core/bpf-records.js';
import { KERNEL_BTF, bpfBuild, chooseBtf } from './bpf-build.js';
import { loadNative } from './native.js';

/** Program groups of the object: each loads and attaches as a whole. */
export type BpfGroup = 'exit' | 'syscalls' | 'retransmit' | 'flags';
export const ALL_GROUPS: readonly BpfGroup[] = ['exit', 'syscalls', 'retransmit', 'flags'];

interface NativeEngine {
  attach(group: BpfGroup): void;
  detach(group: BpfGroup): void;
  watch(tgid: number, slot: number, flags: number, slowNs: number, stallNs: number, slowPerSec: number): void;
  unwatch(tgid: number): boolean;
  isWatched(tgid: number): boolean;
  readSlot(slot: number): Buffer;
  readHist(slot: number): Buffer;
  resetSlot(slot: number, tgid: number, clearHist: boolean): void;
  watchPort(port: number, gapNs: number): void;
  unwatchPort(port: number): void;
  readPort(port: number): number;
  setFlagDevice(stDev: number, on: boolean): void;
  readStats(): Buffer;
  ref(on: boolean): void;
  close(): void;
}

interface BpfAddon {
  bpfEngineSupport?: string | null;
  BpfEngine?: new (
    objectPath: string,
    options: { selfPid: number; groups: readonly BpfGroup[]; btfPath?: string },
    onRecords: (batch: Buffer) => void,
    onExit?: (pid: number, exitCode: number, ns: bigint, ppid: number, tid: number, slot: number, comm: string) => void,
  ) => NativeEngine;
}

export interface BpfEngineOptions {
  groups: readonly BpfGroup[];
  onRecord(record: BpfRecord): void;
  /** Records of a kind this build does not know (a stale object): counted, reported once per batch. */
  onUnknown?(count: number): void;
  objectPath?: string;
  /** 'auto': the build's minimal BTF when it matches this kernel; 'kernel': always the kernel's own. */
  btf?: 'auto' | 'kernel';
  /** Flag changes by this process are not reported (default: this process). */
  selfPid?: number;
}

/** Per-target syscall tracing: histogram, slow syscalls, and the main thread's loop state. */
export interface SyscallTracing {
  slowNs: number;
  /** A busy stretch at least this long sends a stall-end record when it ends (0: none). */
  stallNs: number;
  /** At most this many slow-syscall records a second for the target. */
  slowPerSec: number;
}

export interface EngineTiming {
  /** Open, relocate, verify and load, ms. */
  loadMs: number;
  /** Attach every group, ms. */
  attachMs: number;
}

// Why: the daemon says why it polls instead (status, doctor, STATUS=); each missing piece has its own words.
export function bpfEngineUnavailable(objectPath = bpfBuild().objectPath): string | null {
  const addon = loadNative() as BpfAddon | null;
  if (addon === null) return 'the native addon is not built (npm rebuild; needs make, gcc and libbpf-dev)';
  if (typeof addon.BpfEngine !== 'function') return addon.bpfEngineSupport ?? 'the native addon has no eBPF engine (rebuild it)';
  if (!existsSync(objectPath)) return `the BPF object is not built (${objectPath}; npm rebuild, needs clang, bpftool and libbpf-dev)`;
  if (!existsSync(KERNEL_BTF)) return `the kernel exposes no BTF at ${KERNEL_BTF} (CONFIG_DEBUG_INFO_BTF; in a container bind it in read-only)`;
  return null;
}

/** One loaded object with its maps; every call is a map operation (microseconds), none re-attaches. */
export class BpfEngine {
  private readonly slotsInUse = new Set<number>();
  private closed = false;

  private constructor(
    private readonly native: NativeEngine,
    readonly groups: readonly BpfGroup[],
    readonly timing: EngineTiming,
    /** Which BTF the object was relocated against, and why. */
    readonly btf: string,
  ) {}

  // Why: one place turns "cannot load" into a SentinelError naming what is missing or refused.
  static open(opts: BpfEngineOptions): BpfEngine {
    const build = bpfBuild();
    const objectPath = opts.objectPath ?? build.objectPath;
    const missing = bpfEngineUnavailable(objectPath);
    if (missing !== null) throw new SentinelError('unavailable', missing, { where: objectPath });
    const Engine = (loadNative() as BpfAddon).BpfEngine;
    if (Engine === undefined) throw new SentinelError('internal', 'BpfEngine vanished from the addon', { where: objectPath });
    const btf = opts.btf === 'kernel' ? { path: null, why: 'kernel BTF (asked for)' } : chooseBtf(build);
    const t0 = performance.now();
    let native: NativeEngine;
    try {
      // Exit records arrive decoded by the addon, one call each: the recovery they start decodes nothing first.
      native = new Engine(
        objectPath,
        { selfPid: opts.selfPid ?? process.pid, groups: opts.groups, ...(btf.path !== null ? { btfPath: btf.path } : {}) },
        (batch) => {
          const { records, unknown } = decodeRecords(batch);
          for (const r of records) opts.onRecord(r);
          if (unknown > 0) opts.onUnknown?.(unknown);
        },
        (pid, exitCode, ns, ppid, tid, slot, comm) => {
          opts.onRecord(exitRecord(pid, exitCode, ns, ppid, tid, slot, comm));
        },
      );
    } catch (e) {
      throw new SentinelError(codeForErrno(errnoOf(e), 'bpf'), `the kernel refused the BPF object: ${messageOf(e)}`, { where: objectPath, cause: e });
    }
    const t1 = performance.now();
    try {
      for (const g of opts.groups) native.attach(g);
    } catch (e) {
      native.close();
      throw new SentinelError(codeForErrno(errnoOf(e), 'bpf'), `a BPF program could not attach: ${messageOf(e)}`, { where: objectPath, cause: e });
    }
    return new BpfEngine(native, [...opts.groups], { loadMs: t1 - t0, attachMs: performance.now() - t1 }, btf.why);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A free per-target slot (histogram, loop state); throws when all are taken. */
  allocateSlot(): number {
    for (let s = 0; s < MAX_SLOTS; s++) {
      if (!this.slotsInUse.has(s)) {
        this.slotsInUse.add(s);
        return s;
      }
    }
    throw new SentinelError('unavailable', `all ${MAX_SLOTS} BPF target slots are in use`);
  }

  releaseSlot(slot: number): void {
    this.slotsInUse.delete(slot);
  }

  /**
   * Watch a process: its whole-process exit (`exit`), and with `syscalls` its syscall latencies and
   * main-thread loop state in `slot`. The loop state is reset for the new process (unless `keepLoopState`:
   * the same process, only its exit watch changes); the histogram is kept.
   */
  watch(pid: number, opts: { slot: number; exit: boolean; syscalls?: SyscallTracing; keepLoopState?: boolean }): void {
    const s = opts.syscalls;
    if (s !== undefined && opts.keepLoopState !== true) this.native.resetSlot(opts.slot, pid, false);
    const flags = (opts.exit ? WATCH_EXIT : 0) | (s !== undefined ? WATCH_SYSCALLS : 0);
    this.native.watch(pid, opts.slot, flags, Math.round(s?.slowNs ?? 0), Math.round(s?.stallNs ?? 0), s?.slowPerSec ?? 0);
  }

  /** Stop watching; true when it was watched (the kernel drops a PID itself when its process exits). */
  unwatch(pid: number): boolean {
    return this.native.unwatch(pid);
  }

  isWatched(pid: number): boolean {
    return this.native.isWatched(pid);
  }

  loopState(slot: number): LoopState {
    return decodeLoopState(this.native.readSlot(slot));
  }

  histogram(slot: number): number[] {
    return decodeHistogram(this.native.readHist(slot));
  }

  clearSlot(slot: number): void {
    this.native.resetSlot(slot, 0, true);
  }

  /** Count retransmits from a local port in the kernel; at most one record per `gapMs`. */
  watchPort(port: number, gapMs: number): void {
    this.native.watchPort(port, Math.round(gapMs * 1e6));
  }

  unwatchPort(port: number): void {
    this.native.unwatchPort(port);
  }

  /** Retransmits counted since watchPort, or null when the port is not watched. */
  portCount(port: number): number | null {
    const n = this.native.readPort(port);
    return n < 0 ? null : n;
  }

  /** Report flag-changing ioctls on the filesystem with this stat() `dev`; null turns it off. */
  watchFlags(stDev: number | null): void {
    this.native.setFlagDevice(stDev ?? 0, stDev !== null);
  }

  stats(): BpfStats {
    return decodeStats(this.native.readStats());
  }

  /** Whether the ring buffer keeps the process alive (it does by default). */
  ref(on: boolean): void {
    this.native.ref(on);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
