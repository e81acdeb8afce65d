// The stall detector's user-space half (docs/EBPF.md#stalls): the kernel keeps, per traced target,
// whether its main thread is inside its wait syscall and since when it has been out of it; this
// decides from that state whether the loop is stalled and when to look again. Pure: the time is a parameter.
import type { LoopState } from './bpf-records.js';

export interface StallVerdict {
  stalled: boolean;
  /** How long the main thread has been away from its wait syscall (0n while waiting or not armed). */
  busyNs: bigint;
  /**
   * When to look again: the earliest moment a stall could be reached if nothing changes. While it
   * waits, one threshold from now; while it runs, one threshold after it left its wait.
   */
  nextCheckNs: bigint;
}

// Why: checking exactly when a stall could first be true keeps detection within timer precision of
// the threshold while a healthy loop costs about one map read per threshold.
export function judgeLoop(state: LoopState, nowNs: bigint, thresholdNs: bigint): StallVerdict {
  if (!state.armed || state.inWait) return { stalled: false, busyNs: 0n, nextCheckNs: nowNs + thresholdNs };
  const busyNs = nowNs > state.busySinceNs ? nowNs - state.busySinceNs : 0n;
  if (busyNs >= thresholdNs) return { stalled: true, busyNs, nextCheckNs: nowNs + thresholdNs };
  return { stalled: false, busyNs, nextCheckNs: state.busySinceNs + thresholdNs };
}
