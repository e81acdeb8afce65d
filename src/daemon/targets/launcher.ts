// What every launcher offers the supervisor (launch, kill, stop, give up, who handles an exit) and
// what it may use from it; the launchers themselves, one per kind, are in launchers.ts (docs/EBPF.md#pieces).
import type { Logger } from 'pino';
import { SentinelError } from '../../core/errors.js';
import { procIdentity, type ProcIdentity } from '../../adapters/proc.js';
import type { SupervisedChild } from '../../adapters/process.js';
import { signalIdentified } from '../../adapters/signal-process.js';
import type { WatchdogExit } from './watchdog-evidence.js';

/** How a target names its process: a systemd unit, a command we supervise, or a pid file. */
export type TargetKind = 'unit' | 'command' | 'pidFile';

/** A main process as launched or found: its identity, and the child handle when it is ours. */
export interface Launched {
  identity: ProcIdentity;
  child: SupervisedChild | null;
  /** PIDs a previous daemon's run of this target left behind, killed before it started (first launch only). */
  leftovers?: number[];
}

/** What a launcher may use from the supervisor. */
export interface LaunchContext {
  /** The first start (find or start, no recovery action) rather than a recovery. */
  first: boolean;
  /** The main PID before the last exit or kill, to tell a new process from the old one. */
  lastPid: number | null;
  log: Logger;
  now(): number;
  /** A sleep that the supervisor's stop() cancels. */
  sleep(ms: number): Promise<void>;
  /** Someone else (systemd) restarts the process: only find the new one, do not run the recovery action. */
  awaitOnly?: boolean;
}

/**
 * Who brings an exited main process back: the sentinel now, or systemd (its watchdog, an operator's job).
 * `watchdog`: the run that hung, whose stacks are recorded. `watchdogKill`: an exit by SIGKILL of a unit
 * with a watchdog, restarted at once like a crash; systemd may have sent it after TimeoutAbortSec= (its
 * watchdog signal did not end the process), which the journal tells once the restart is under way.
 */
export type ExitHandling = { by: 'sentinel'; watchdogKill?: WatchdogExit } | { by: 'systemd'; why: string; watchdog?: WatchdogExit };

/** A unit stopped by someone else and not coming back: not an error, not to be restarted. */
export class StoppedOutside extends SentinelError {
  constructor(unit: string, state: string) {
    super('unavailable', `unit was stopped outside the sentinel (${state}); not restarted`, { where: unit });
  }
}

/** At the sentinel's start, systemd is still starting the unit (a queued start job, `activating`): wait for it. */
export class UnitStarting extends SentinelError {
  constructor(unit: string, state: string) {
    super('unavailable', `unit is being started by systemd (${state})`, { where: unit });
  }
}

// Why: the supervisor runs one state machine for every target; what differs per kind sits behind this.
export interface Launcher {
  readonly kind: TargetKind;
  /** The recovery action's name in logs and the audit log. */
  readonly action: string;
  /** The process is our child: its own exit event detects, and a process started during stop() is ours to kill. */
  readonly ownsProcess: boolean;
  /** Someone else (systemd, an operator) may bring it back: a failed or stopped target is adopted once active again. */
  readonly returnsOutside: boolean;
  launch(ctx: LaunchContext): Promise<Launched>;
  /** Kill a hung or misbehaving process (named by PID and start time) before its replacement starts. */
  kill(proc: ProcIdentity | null, child: SupervisedChild | null): Promise<void>;
  /** At daemon stop: end what is ours, leave what is not. */
  stop(child: SupervisedChild | null): Promise<void>;
  /** Who restarts after this exit (default: the sentinel); for a watchdog kill, what names the hung run's journal. */
  exitHandling?(exit: { pid: number; signal: number | null; exitStatus: number | null }): Promise<ExitHandling>;
  /** The restart budget is spent: a process judged broken (hung, retransmitting) is not left running. */
  giveUp(proc: ProcIdentity | null, child: SupervisedChild | null): Promise<void>;
}

// Why: a main PID is only useful with its start time (PID reuse); a process already gone fails the launch.
export async function identify(pid: number, where: string): Promise<ProcIdentity> {
  const identity = await procIdentity(pid);
  if (identity === null) throw new SentinelError('unavailable', `main PID ${pid} is not running`, { where });
  return identity;
}

// Why: a process that is not a unit's (systemd stops those itself) is killed at once, child or not. By
// its identity: the decision was made about a PID seen earlier, and a process that took the PID since
// (the one decided on gone) is never signalled (adapters/signal-process.ts). A child of ours cannot
// lose its PID before it is reaped, so its handle is enough.
export async function killNow(proc: ProcIdentity | null, child: SupervisedChild | null): Promise<void> {
  if (child !== null && child.running) await child.terminate({ signal: 'SIGKILL', graceMs: 0 });
  else if (proc !== null) await signalIdentified(proc, 'SIGKILL');
}
