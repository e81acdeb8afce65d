// The vocabulary of target recovery: states, status, audit events, and the two kernel sources
// (process exits, TCP retransmits) the supervisor listens to, whatever implements them (docs/EBPF.md).
import type { Logger } from 'pino';
import type { Launcher, TargetKind } from './launchers.js';
import type { RestartBudget } from '../../core/recovery-policy.js';
import type { ProcIdentity } from '../../adapters/proc.js';
import type { SupervisedChild } from '../../adapters/process.js';
import type { TargetSpec } from './spec.js';
import type { ChildRecords } from './child-records.js';
import type { EbpfHost } from '../ebpf-host.js';

/** How an exit is being seen right now: in the kernel, by the child's own exit event, or by polling /proc. */
export type DetectionMode = 'ebpf' | 'poll' | 'supervised';

/** starting → running → (down → recovering → running)* ; failed once the budget is spent; stopped by stop(). */
export type TargetState = 'starting' | 'running' | 'recovering' | 'down' | 'failed' | 'stopped';

/** One exit of a main process as it was seen: its status, or the signal that ended it (both null: only seen gone). */
export interface ExitSeen {
  pid: number;
  signal: number | null;
  exitStatus: number | null;
}

/** What the supervisor keeps of one target between events. */
export interface TargetRuntime {
  readonly spec: TargetSpec;
  readonly launcher: Launcher;
  readonly budget: RestartBudget;
  pid: number | null;
  /** The process `pid` names, with its start time (set with it; read only while `pid` is set): what a kill signals. */
  identity: ProcIdentity | null;
  /** The main PID before the last exit or kill, to tell a new process from the old one. */
  lastPid: number | null;
  /** How the last main process seen to exit ended: what a recovery that its new process failed reports. */
  lastExit: ExitSeen | null;
  child: SupervisedChild | null;
  state: TargetState;
  restarts: number;
  lastDetectionLatencyMs: number | null;
  lastRecoveryLatencyMs: number | null;
  failedReason: string | null;
  recovering: boolean;
}

/** One detection or action, for the daemon's audit log (as "recovery" lines) and for tests and benches. */
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
    | 'tracer-attached'
    | 'stopped-outside'
    | 'reset'
    | 'leftovers-killed'
    | 'watchdog-timeout'
    | 'stack-dump'
    | 'service-event'
    | 'stall'
    | 'stall-ended';
  target?: string;
  [field: string]: unknown;
}

/** A process exit as the kernel reports it; `ns` is CLOCK_MONOTONIC (process.hrtime's clock). */
export interface KernelExit {
  pid: number;
  signal: number | null;
  exitStatus: number | null;
  comm?: string;
  ns: bigint;
}

/** Counters of a kernel source, for `status` and tests. */
export interface SourceStats {
  /** Records that reached user space. */
  events: number;
  /** Records the kernel could not hand over (ring buffer full), all kinds. */
  lost: number;
}

/** What a kernel source tells its user besides events: it became live or blind, and why. */
export type SourceStateHandler = (source: 'exit' | 'retransmit', state: 'attached' | 'down', reason: string) => void;

// Why: exit detection depends on this port only (engine-sources.ts implements it with the eBPF engine),
// so the supervisor knows nothing of the kernel side (docs/EBPF.md#pieces).
export interface ExitSource {
  /** Attach; never throws: a source that cannot attach reports why through `degraded`. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Report the whole-process exit of `pid`; `child` says it is a child of this process. */
  watch(pid: number, child: boolean): void;
  unwatch(pid: number): void;
  /** Why the source sees no exit at all (not attached, disabled), or null while it is live. */
  readonly degraded: string | null;
  /** Null when the exit of `pid` is seen in the kernel right now; else why not (e.g. not confirmed alive yet). */
  blindSpot(pid: number, child: boolean): string | null;
  stats(): SourceStats | null;
}

/** TCP retransmissions from a watched local port since the last hit (counted in the kernel). */
export interface RetransmitHit {
  sport: number;
  count: number;
  ns: bigint;
}

// Why: the retransmit alarm depends on this port only; the kernel side can be replaced (docs/EBPF.md#pieces).
export interface RetransmitSource {
  /** Start counting retransmits from these local ports; never throws (see `degraded`). */
  start(ports: readonly number[]): Promise<void>;
  stop(): Promise<void>;
  readonly degraded: string | null;
  stats(): SourceStats | null;
}

/** The kernel sources a supervisor uses, with the handlers they deliver to. */
export interface KernelSources {
  exit: ExitSource;
  retransmit: RetransmitSource;
}

/** Handlers the sources call: every event, and every change between live and blind. */
export interface SourceHandlers {
  exit(e: KernelExit): void;
  retransmit(e: RetransmitHit): void;
  state: SourceStateHandler;
  /** The set of PIDs seen in the kernel changed: polling may be adjusted. */
  coverage(): void;
}

/** One target in `sentinel status` and STATUS= (docs/EBPF.md#fallback-degraded for mode and degraded). */
export interface TargetStatus {
  name: string;
  /** unit, command or pidFile: how the target's process is found and restarted. */
  kind: TargetKind;
  pid: number | null;
  state: TargetState;
  mode: DetectionMode;
  /** Why detection is not in the kernel (source missing, not permitted, re-attaching), else null. */
  degraded: string | null;
  /** Recovery actions taken (respawn, restart), whether or not the new process then stayed up. */
  restarts: number;
  /** Kernel exit timestamp to the sentinel seeing it (kernel path only), ms. */
  lastDetectionLatencyMs: number | null;
  /** Exit (or detection) to recovery action started, ms. */
  lastRecoveryLatencyMs: number | null;
  failedReason: string | null;
  retransmitAlarm: boolean;
  healthFailures: number;
  /** The main thread is in a stall right now (`stall` configured; docs/EBPF.md#stalls). */
  stalled: boolean;
}

/** What `reset` did: the budget is always cleared; a failed or down target is recovered. */
export interface TargetResetResult {
  target: string;
  previousState: TargetState;
  action: 'recovering' | 'budget reset';
  /** The state right after the reset (the recovery runs on). */
  state: TargetState;
}

/** What the supervisor needs from the daemon, and the knobs tests and benches turn. */
export interface TargetSupervisorDeps {
  log: Logger;
  audit?: (event: TargetAuditEvent) => void;
  /** Monotonic milliseconds for back-off, budget and rates (default performance.now). */
  now?: () => number;
  /** CLOCK_MONOTONIC ns, the clock of kernel timestamps (default process.hrtime.bigint). */
  hrtimeNs?: () => bigint;
  /** The daemon's eBPF engine (started before the supervisor); without one, exits are polled from /proc. */
  ebpf?: EbpfHost;
  /** Other kernel sources (tests); default: the engine's (engine-sources.ts). */
  sources?: (handlers: SourceHandlers) => KernelSources;
  /** /proc poll interval of the fallback, ms (daemon limit `exitPollIntervalMs`). */
  pollIntervalMs?: number;
  /** How often a raised retransmit alarm is re-evaluated so a quiet port clears it, ms (`retransmitCheckIntervalMs`). */
  retransmitCheckIntervalMs?: number;
  /**
   * Use a supervised command's own exit event as a detector (default true). The bench turns it
   * off to time the eBPF path alone, or /proc polling alone.
   */
  childExitEvents?: boolean;
  /** Where a supervised command's stdout/stderr go (default ignore). */
  commandStdio?: 'ignore' | 'inherit';
  /** Where running `command` targets are recorded, so a next daemon kills what a killed one left (stateDir). */
  childRecords?: ChildRecords;
}

// Why: kernel timestamps are ns, latencies are reported in ms.
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;
