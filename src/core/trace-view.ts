// What `sentinel trace` shows of one target and the control op `trace` returns (docs/EBPF.md#trace):
// the kernel's syscall-latency histogram, the slow syscalls kept by the daemon, and the stall state.

export interface SlowSyscall { syscall: string; nr: number; tid: number; durationMs: number; agoMs: number }

/** One target in `sentinel trace` (and the control op `trace`). */
export interface TraceView {
  target: string;
  pid: number | null;
  /** Why this target is not traced, or null. */
  notTraced: string | null;
  slowMs: number | null;
  /** 32 log2 buckets in microseconds: 0 = under 1 us, n = [2^(n-1), 2^n) us. */
  histogram: number[];
  syscalls: number;
  slow: SlowSyscall[];
  slowTotal: number;
  slowDropped: number;
  stall: null | { thresholdMs: number; action: 'alert' | 'restart'; inWait: boolean; armed: boolean; busyMs: number; maxBusyMs: number; stalled: boolean; stalls: number; lastStallMs: number | null; currentSyscall: string | null };
}
