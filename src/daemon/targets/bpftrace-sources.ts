// The kernel sources as bpftrace provides them: bpf/exit.bt (whole-process exits of our children and of
// up to 8 PID slots, re-attached when a PID changes) and bpf/retransmit.bt (up to 4 local ports).
import type { Logger } from 'pino';
import type { TracerEvent } from '../../core/bpf-events.js';
import { messageOf } from '../../core/errors.js';
import { BpftraceTracer, bpfProgramPath, ensureTracefs } from '../../adapters/bpftrace.js';
import type { ExitSource, KernelSources, RetransmitSource, SourceHandlers, SourceStats, TracerOptions } from './types.js';

/** Number of PID slots in bpf/exit.bt ($2..$9); more unit/pid-file targets are polled. */
export const EXIT_PID_SLOTS = 8;
/** Number of port slots in bpf/retransmit.bt ($1..$4). */
export const RETRANSMIT_PORT_SLOTS = 4;

// Why: both sources run one bpftrace program the same way: tracefs first, attach, report live or blind.
abstract class TracerSource {
  protected tracer: BpftraceTracer | null = null;
  protected stopped = false;

  constructor(
    protected readonly opts: TracerOptions,
    protected readonly log: Logger,
    protected readonly on: SourceHandlers,
    protected reason: string | null,
  ) {}

  get degraded(): string | null {
    return this.reason;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.tracer?.stop();
  }

  stats(): SourceStats | null {
    return this.tracer?.stats ?? null;
  }

  /** Why tracing cannot start here (disabled, no tracefs), or null. */
  protected async unavailable(): Promise<string | null> {
    if (this.opts.disabled === true) return 'eBPF disabled by configuration';
    try {
      await ensureTracefs();
      return null;
    } catch (e) {
      return messageOf(e);
    }
  }

  /** Starts the program; resolves null once attached, or with why it could not attach. */
  protected async attach(name: 'exit' | 'retransmit', program: string, args: string[]): Promise<string | null> {
    this.tracer = new BpftraceTracer({
      log: this.log,
      binary: this.opts.binary,
      attachTimeoutMs: this.opts.attachTimeoutMs,
      name,
      program,
      args,
      onEvent: (e) => {
        if (!this.stopped) this.onEvent(e);
      },
      onState: (state, reason) => {
        if (!this.stopped) this.onState(state, reason);
      },
    });
    try {
      await this.tracer.start();
      return null;
    } catch (e) {
      this.tracer = null;
      return messageOf(e);
    }
  }

  protected abstract onEvent(e: TracerEvent): void;
  protected abstract onState(state: 'attached' | 'down', reason: string): void;
}

// Why: bpftrace takes no updates at run time; children are matched by parent (no re-attach), other
// PIDs by slot, and a new PID set means a new bpftrace attached before the old one stops (docs/EBPF.md).
class BpftraceExitSource extends TracerSource implements ExitSource {
  private readonly slotted = new Set<number>();

  constructor(opts: TracerOptions, log: Logger, on: SourceHandlers) {
    super(opts, log, on, 'not started');
  }

  get helperPid(): number | undefined {
    return this.tracer?.pid;
  }

  async start(): Promise<void> {
    this.stopped = false;
    const why = (await this.unavailable()) ?? (await this.attach('exit', this.opts.exitProgram ?? bpfProgramPath('exit.bt'), this.args()));
    if (why === null) {
      this.reason = null;
      this.reattach();
      return;
    }
    this.reason = `${why}; polling /proc`;
    if (this.opts.disabled !== true) this.log.warn({ reason: this.reason }, 'eBPF exit detection unavailable: falling back to polling');
    this.on.coverage();
  }

  watch(pid: number, child: boolean): void {
    if (child) return; // the parent filter ($1) covers every child of this process
    this.slotted.add(pid);
    this.reattach();
  }

  // A dead PID keeps its slot until the next watch: one re-attach per restart, not two.
  unwatch(pid: number): void {
    this.slotted.delete(pid);
  }

  blindSpot(pid: number, child: boolean): string | null {
    if (this.reason !== null) return this.reason;
    const args = this.tracer?.attachedArgs ?? null;
    if (args === null) return 'bpftrace re-attaching';
    if (child ? args[0] === String(process.pid) : args.slice(1).includes(String(pid))) return null;
    return 'bpftrace re-attaching with the new PID';
  }

  /** Arguments of bpf/exit.bt: our own PID (children = supervised commands), then the PID slots. */
  private args(): string[] {
    const slots = [...this.slotted].slice(0, EXIT_PID_SLOTS).map(String);
    while (slots.length < EXIT_PID_SLOTS) slots.push('0');
    return [String(process.pid), ...slots];
  }

  private reattach(): void {
    const tracer = this.tracer;
    if (tracer === null || this.stopped) return;
    tracer.setArgs(this.args()).then(
      () => this.on.coverage(),
      (e: unknown) => {
        this.log.error({ reason: messageOf(e) }, 'bpftrace re-attach with new PIDs failed; polling');
        this.on.coverage();
      },
    );
  }

  protected onEvent(e: TracerEvent): void {
    if (e.kind === 'exit') this.on.exit({ pid: e.pid, signal: e.signal, exitStatus: e.exitStatus, comm: e.comm, ns: e.ns });
  }

  protected onState(state: 'attached' | 'down', reason: string): void {
    this.reason = state === 'attached' ? null : `${reason}; polling /proc until bpftrace is back`;
    this.on.state('exit', state, reason);
    if (state === 'attached') this.reattach();
    else this.on.coverage();
  }
}

// Why: retransmits are counted in the kernel per local port; only watched ports reach user space.
class BpftraceRetransmitSource extends TracerSource implements RetransmitSource {
  constructor(opts: TracerOptions, log: Logger, on: SourceHandlers) {
    super(opts, log, on, null);
  }

  async start(ports: readonly number[]): Promise<void> {
    this.stopped = false;
    if (ports.length === 0) return;
    if (ports.length > RETRANSMIT_PORT_SLOTS) this.log.warn({ ports }, `only the first ${RETRANSMIT_PORT_SLOTS} ports are watched for retransmits`);
    const args = ports.slice(0, RETRANSMIT_PORT_SLOTS).map(String);
    while (args.length < RETRANSMIT_PORT_SLOTS) args.push('0');
    const why = (await this.unavailable()) ?? (await this.attach('retransmit', this.opts.retransmitProgram ?? bpfProgramPath('retransmit.bt'), args));
    this.reason = why;
    if (why !== null && this.opts.disabled !== true) this.log.warn({ reason: why }, 'eBPF retransmit detection unavailable');
  }

  protected onEvent(e: TracerEvent): void {
    if (e.kind === 'retransmit') this.on.retransmit({ sport: e.sport, ns: e.ns });
  }

  protected onState(state: 'attached' | 'down', reason: string): void {
    this.reason = state === 'attached' ? null : reason;
    this.on.state('retransmit', state, reason);
  }
}

// Why: the default kernel sources of a supervisor; the only place that knows they are bpftrace.
export function bpftraceSources(opts: TracerOptions, log: Logger): (on: SourceHandlers) => KernelSources {
  return (on) => ({ exit: new BpftraceExitSource(opts, log, on), retransmit: new BpftraceRetransmitSource(opts, log, on) });
}
