// Exit detection: the kernel source, the supervised child's own exit event and a /proc poll,
// combined so that each watched main PID yields exactly one `exit`, from whichever saw it first.
import { ProcPoller, type ProcIdentity } from '../../adapters/proc.js';
import type { ChildExit, SupervisedChild } from '../../adapters/process.js';
import type { DetectionMode, ExitSource, KernelExit } from './types.js';
import { constants as osConstants } from 'node:os';

/** One exit, whoever saw it; `exitNs` is the kernel's timestamp when the kernel saw it. */
export interface DetectedExit {
  pid: number;
  via: 'ebpf' | 'poll' | 'child';
  signal: number | null;
  exitStatus: number | null;
  comm?: string;
  exitNs: bigint | null;
  detectedNs: bigint;
}

/** How exits are detected besides the kernel source: the poll interval, the child's own event, the clock. */
export interface DetectionOptions {
  /** /proc poll interval of the fallback, ms. */
  pollIntervalMs: number;
  /** Use a supervised child's own exit event as a detector. */
  childExitEvents: boolean;
  hrtimeNs: () => bigint;
  onExit(e: DetectedExit): void;
}

interface Watched {
  identity: ProcIdentity;
  child: SupervisedChild | null;
}

export function signalNumber(name: string | null): number | null {
  if (name === null) return null;
  return (osConstants.signals as Record<string, number | undefined>)[name] ?? null;
}

// Why: a signal by its number and name, as `kill -l` and the journal name it: "signal 11, SIGSEGV".
function signalText(signal: number): string {
  const name = Object.entries(osConstants.signals as Record<string, number>).find(([, n]) => n === signal)?.[0];
  return name === undefined ? `signal ${String(signal)}` : `signal ${String(signal)}, ${name}`;
}

/** How the main process `pid` ended, from the last exit seen: "status 7", "signal 11, SIGSEGV", or that only its absence was seen. */
export function exitText(last: { pid: number; signal: number | null; exitStatus: number | null } | null, pid: number | null): string {
  if (last === null || last.pid !== pid || (last.signal === null && last.exitStatus === null)) return 'how it ended is unknown: seen gone from /proc';
  return last.signal !== null ? signalText(last.signal) : `status ${String(last.exitStatus)}`;
}

// Why: the supervisor asks one question ("did this PID exit?") and gets one answer; which detector
// covers a PID at a given moment (docs/EBPF.md#fallback-degraded) is decided here, not there.
export class ExitDetector {
  private readonly watched = new Map<number, Watched>();
  private readonly poller: ProcPoller;
  private stopped = false;

  constructor(
    private readonly source: ExitSource,
    private readonly opts: DetectionOptions,
  ) {
    this.poller = new ProcPoller(opts.pollIntervalMs, (pid, ns) => this.report(pid, 'poll', { signal: null, exitStatus: null }, null, ns));
  }

  // Why: main PIDs are watched before the source attaches; polling covers them until it is live.
  async start(): Promise<void> {
    this.stopped = false;
    this.refresh();
    await this.source.start();
    this.refresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poller.stop();
    await this.source.stop();
  }

  // Why: a new main PID (started, restarted or adopted); a supervised child's exit event counts too.
  watch(identity: ProcIdentity, child: SupervisedChild | null): void {
    const entry: Watched = { identity, child };
    this.watched.set(identity.pid, entry);
    this.source.watch(identity.pid, child !== null);
    if (child !== null && this.opts.childExitEvents) {
      child.onExit((exit: ChildExit) => {
        if (this.watched.get(identity.pid) === entry) this.report(identity.pid, 'child', { signal: signalNumber(exit.signal), exitStatus: exit.exitCode }, null);
      });
    }
    this.refresh();
  }

  // Why: a PID the supervisor kills or gives up on is no longer reported.
  unwatch(pid: number): void {
    this.watched.delete(pid);
    this.poller.unwatch(pid);
    this.source.unwatch(pid);
  }

  /** Kernel exits arrive here from the source (any process it reports; unwatched ones are dropped). */
  onKernelExit(e: KernelExit): void {
    this.report(e.pid, 'ebpf', { signal: e.signal, exitStatus: e.exitStatus, comm: e.comm }, e.ns);
  }

  /** How `pid` (null: no process yet) is covered now, and why not in the kernel. */
  coverage(pid: number | null, supervised: boolean): { mode: DetectionMode; degraded: string | null } {
    const blind = this.source.degraded ?? (pid === null ? 'waiting for the main PID' : this.source.blindSpot(pid, supervised));
    if (blind === null) return { mode: 'ebpf', degraded: null };
    return { mode: supervised && this.opts.childExitEvents ? 'supervised' : 'poll', degraded: blind };
  }

  // Why: poll exactly the PIDs that neither the kernel nor a child exit event covers.
  refresh(): void {
    if (this.stopped) return;
    for (const [pid, w] of this.watched) {
      const childCovers = w.child !== null && this.opts.childExitEvents;
      const needsPoll = !childCovers && this.source.blindSpot(pid, w.child !== null) !== null;
      if (needsPoll && !this.poller.has(pid)) this.poller.watch(w.identity);
      if (!needsPoll && this.poller.has(pid)) this.poller.unwatch(pid);
    }
  }

  // Why: the first detector to see the exit wins; the PID is forgotten, so the others find nothing
  // (the other detectors let go of it once the exit has been handed on: the recovery starts first).
  private report(pid: number, via: DetectedExit['via'], info: { signal: number | null; exitStatus: number | null; comm?: string }, exitNs: bigint | null, detectedNs = this.opts.hrtimeNs()): void {
    if (this.stopped || !this.watched.delete(pid)) return;
    try {
      this.opts.onExit({ pid, via, ...info, exitNs, detectedNs });
    } finally {
      if (!this.watched.has(pid)) {
        this.poller.unwatch(pid);
        this.source.unwatch(pid);
      }
    }
  }
}
