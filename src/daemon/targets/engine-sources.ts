// The supervisor's kernel sources on the daemon's eBPF engine (ebpf-host.ts): a main PID goes into the
// kernel's exit map, and a restarted target's new PID is one more map write (nothing re-attaches);
// retransmits are counted per watched local port in the kernel and read as counts (docs/EBPF.md#engine).
import type { Logger } from 'pino';
import { isAliveSync } from '../../adapters/proc.js';
import type { EbpfHost } from '../ebpf-host.js';
import type { ExitSource, KernelSources, RetransmitSource, SourceHandlers, SourceStats } from './types.js';

/** At most one retransmit record per port in this many ms; the kernel counts every retransmit. */
export const RETRANSMIT_RECORD_GAP_MS = 50;
/** The per-port counters are also read this often, so the tail of a burst after its record is counted. */
export const RETRANSMIT_READ_INTERVAL_MS = 250;

// Why: an exit is seen in the kernel from the moment the PID is in the map. Whether the process died
// before that is one /proc read right after the insert; one that had is left blind, and the poll reports it.
class EngineExitSource implements ExitSource {
  private reason: string | null = 'not started';
  private readonly watched = new Set<number>();
  /** Watched PIDs found dead right after their insert: their exit never reaches the kernel map. */
  private readonly missed = new Set<number>();
  private off: (() => void) | null = null;
  private events = 0;

  constructor(
    private readonly host: EbpfHost,
    private readonly log: Logger,
    private readonly on: SourceHandlers,
  ) {}

  get degraded(): string | null {
    return this.reason;
  }

  start(): Promise<void> {
    const why = this.host.unavailable;
    if (why !== null) {
      this.reason = `${why}; polling /proc`;
      if (!this.host.disabled) this.log.warn({ reason: this.reason }, 'eBPF exit detection unavailable: falling back to polling');
      this.on.coverage();
      return Promise.resolve();
    }
    this.off = this.host.on('exit', (r) => {
      if (!this.watched.delete(r.pid)) return;
      this.missed.delete(r.pid);
      this.events++;
      this.on.exit(r);
    });
    this.reason = null;
    for (const pid of this.watched) this.insert(pid);
    this.on.coverage();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.off?.();
    this.off = null;
    for (const pid of this.watched) this.host.unwatchExit(pid);
    this.watched.clear();
    this.missed.clear();
    this.reason = 'stopped';
    return Promise.resolve();
  }

  // A supervised child is watched by PID like any other: its own exit event covers the instant before.
  watch(pid: number, _child: boolean): void {
    this.watched.add(pid);
    if (this.reason === null) this.insert(pid);
  }

  unwatch(pid: number): void {
    this.missed.delete(pid);
    if (this.watched.delete(pid)) this.host.unwatchExit(pid);
  }

  blindSpot(pid: number, _child: boolean): string | null {
    if (this.reason !== null) return this.reason;
    return this.missed.has(pid) ? 'exited before it was added to the kernel map' : null;
  }

  stats(): SourceStats {
    return { events: this.events, lost: this.host.status().kernel?.lost ?? 0 };
  }

  private insert(pid: number): void {
    if (this.host.watchExit(pid) && !isAliveSync(pid)) this.missed.add(pid);
  }
}

// Why: the alarm needs a rate, not a stream: each record (at most one per port per gap) and a periodic
// read turn the kernel's running count into "n more since last time".
class EngineRetransmitSource implements RetransmitSource {
  private reason: string | null = null;
  private readonly seen = new Map<number, number>();
  private off: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private events = 0;

  constructor(
    private readonly host: EbpfHost,
    private readonly log: Logger,
    private readonly on: SourceHandlers,
  ) {}

  get degraded(): string | null {
    return this.reason;
  }

  start(ports: readonly number[]): Promise<void> {
    if (ports.length === 0) return Promise.resolve();
    const why = this.host.unavailable;
    if (why !== null) {
      this.reason = why;
      if (!this.host.disabled) this.log.warn({ reason: why }, 'eBPF retransmit detection unavailable');
      return Promise.resolve();
    }
    for (const port of ports) {
      this.host.watchPort(port, RETRANSMIT_RECORD_GAP_MS);
      this.seen.set(port, 0);
    }
    this.off = this.host.on('retransmit', (r) => {
      if (!this.seen.has(r.port)) return;
      this.events++;
      this.read(r.port, r.ns);
    });
    this.timer = setInterval(() => {
      const ns = process.hrtime.bigint();
      for (const port of this.seen.keys()) this.read(port, ns);
    }, RETRANSMIT_READ_INTERVAL_MS);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.off?.();
    this.off = null;
    for (const port of this.seen.keys()) this.host.unwatchPort(port);
    this.seen.clear();
    return Promise.resolve();
  }

  stats(): SourceStats {
    return { events: this.events, lost: this.host.status().kernel?.lost ?? 0 };
  }

  private read(port: number, ns: bigint): void {
    const count = this.host.portCount(port);
    const before = this.seen.get(port);
    if (count === null || before === undefined || count <= before) return;
    this.seen.set(port, count);
    this.on.retransmit({ sport: port, count: count - before, ns });
  }
}

// Why: the supervisor's default kernel sources; the only file that knows they are the eBPF engine.
export function engineSources(host: EbpfHost, log: Logger): (on: SourceHandlers) => KernelSources {
  return (on) => ({ exit: new EngineExitSource(host, log, on), retransmit: new EngineRetransmitSource(host, log, on) });
}
