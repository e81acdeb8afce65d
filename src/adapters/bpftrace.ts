// The bpftrace process : start, wait for the attach event, parse NDJSON, restart it
// with back-off when it dies, swap its arguments without a blind window, stop it cleanly.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { SentinelError, messageOf } from '../core/errors.js';
import { parseTracerLine, type TracerEvent } from '../core/bpf-events.js';
import { backoffDelayMs, type BackoffPolicy } from '../core/recovery-policy.js';
import { packageRoot } from './package-root.js';
import { runCommand, spawnSupervised, type SupervisedChild } from './process.js';

const TRACEFS = '/sys/kernel/tracing';

// Why: bpftrace programs ship in bpf/ beside the package, in src and in dist alike.
export function bpfProgramPath(name: 'exit.bt' | 'retransmit.bt'): string {
  return join(packageRoot(), 'bpf', name);
}

// Why: tracepoints need tracefs; on hosts that do not mount it at boot we mount it once.
export async function ensureTracefs(): Promise<void> {
  if (existsSync(join(TRACEFS, 'events'))) return;
  const r = await runCommand(['mount', '-t', 'tracefs', 'nodev', TRACEFS], { timeoutMs: 10_000 });
  if (!r.ok || !existsSync(join(TRACEFS, 'events'))) {
    throw new SentinelError('unavailable', `tracefs is not mounted and could not be mounted: ${r.stderr.trim() || 'unknown error'}`, { where: TRACEFS });
  }
}

/** Counters of one tracer, for `status` and tests (docs/EBPF.md#limits). */
export interface TracerStats {
  /** Events parsed and delivered. */
  events: number;
  /** Lines that could not be parsed (logged, never fatal). */
  unparsed: number;
  /** Events the kernel dropped, as bpftrace reported them. */
  lost: number;
  /** bpftrace processes started, including the first one. */
  starts: number;
  /** Unexpected deaths of bpftrace. */
  deaths: number;
}

/** One bpftrace program to keep running: the program, its arguments, and who hears its events. */
export interface BpftraceOptions {
  /** A short name for logs ("exit", "retransmit"). */
  name: string;
  program: string;
  args: string[];
  log: Logger;
  onEvent(event: TracerEvent): void;
  /** Called when the tracer becomes live (attached) or blind (down), with why. */
  onState?(state: 'attached' | 'down', reason: string): void;
  binary?: string;
  attachTimeoutMs?: number;
  restartBackoff?: BackoffPolicy;
}

interface RunningTracer {
  proc: SupervisedChild;
  args: string[];
  attached: boolean;
  stopping: boolean;
  stderrTail: string[];
}

const DEFAULT_RESTART_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 10_000, factor: 2 };
/** SIGINT lets bpftrace detach its probes; SIGKILL after this long (daemon stop must not hang). */
const STOP_GRACE_MS = 2000;

/** One bpftrace program kept running; `attachedArgs` tells which arguments are live in the kernel. */
export class BpftraceTracer {
  readonly stats: TracerStats = { events: 0, unparsed: 0, lost: 0, starts: 0, deaths: 0 };
  private current: RunningTracer | null = null;
  private wantedArgs: string[];
  private stopped = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private consecutiveFailures = 0;
  private lastReason = 'not started';
  private swapping: Promise<void> = Promise.resolve();
  /** Every bpftrace process still running, including one attaching for a swap. */
  private readonly all = new Set<RunningTracer>();

  constructor(private readonly opts: BpftraceOptions) {
    this.wantedArgs = [...opts.args];
  }

  get attached(): boolean {
    return this.current?.attached === true;
  }

  /** The arguments of the attached bpftrace, or null while nothing is attached. */
  get attachedArgs(): readonly string[] | null {
    return this.current?.attached === true ? this.current.args : null;
  }

  get pid(): number | undefined {
    return this.current?.proc.pid;
  }

  /** Why the tracer is not attached (last failure), for status reports. */
  get reason(): string {
    return this.lastReason;
  }

  // Why: detection is only live after the attach event; callers must know when polling can stop.
  async start(): Promise<void> {
    this.stopped = false;
    await this.spawnAttached(this.wantedArgs);
  }

  /**
   * Replace the program's arguments (a new watched PID set). bpftrace cannot take updates at run
   * time, so a new process is attached first and the old one stopped after: no blind window.
   */
  setArgs(args: string[]): Promise<void> {
    this.wantedArgs = [...args];
    const run = async (): Promise<void> => {
      if (this.stopped || this.current === null || !this.current.attached) return; // a pending restart uses wantedArgs
      if (this.current.args.join(' ') === this.wantedArgs.join(' ')) return;
      await this.spawnAttached(this.wantedArgs);
    };
    this.swapping = this.swapping.then(run, run);
    return this.swapping;
  }

  // Why: SIGINT lets bpftrace detach its probes; SIGKILL only if it does not go in time.
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.current = null;
    await Promise.all([...this.all].map((t) => this.terminate(t)));
  }

  private async terminate(t: RunningTracer, graceMs = STOP_GRACE_MS): Promise<void> {
    t.stopping = true;
    await t.proc.terminate({ signal: 'SIGINT', graceMs });
  }

  private async spawnAttached(args: string[]): Promise<RunningTracer> {
    const binary = this.opts.binary ?? 'bpftrace';
    this.stats.starts++;
    let proc: SupervisedChild;
    try {
      proc = await spawnSupervised([binary, '-f', 'json', '-B', 'line', this.opts.program, ...args], { stdio: 'pipe', where: this.opts.program, dieWithParent: true });
    } catch (e) {
      this.lastReason = `bpftrace not runnable (${binary}): ${messageOf(e)}`;
      throw new SentinelError('unavailable', this.lastReason, { where: this.opts.program, cause: e });
    }
    const t: RunningTracer = { proc, args: [...args], attached: false, stopping: false, stderrTail: [] };
    this.all.add(t);
    const { log, name } = this.opts;
    return new Promise<RunningTracer>((resolve, reject) => {
      let settled = false;
      const timeoutMs = this.opts.attachTimeoutMs ?? 15_000;
      const attachTimer = setTimeout(() => {
        if (settled) return;
        settled = true;
        void this.terminate(t, 500);
        reject(new SentinelError('unavailable', `bpftrace ${name} did not attach within ${timeoutMs} ms`, { where: this.opts.program }));
      }, timeoutMs);

      createInterface({ input: proc.stdout! }).on('line', (line) => {
        const parsed = parseTracerLine(line);
        if (parsed === null) return;
        if (!parsed.ok) {
          this.stats.unparsed++;
          log.warn({ tracer: name, reason: parsed.reason, unparsed: this.stats.unparsed }, 'bpftrace line not understood; ignored');
          return;
        }
        const ev = parsed.event;
        if (ev.kind === 'attached') {
          log.debug({ tracer: name, probes: ev.probes, bpftracePid: proc.pid }, 'bpftrace probes attached; waiting for ready');
          return;
        }
        if (ev.kind === 'ready') {
          t.attached = true;
          if (this.stopped) {
            void this.terminate(t);
          } else {
            const old = this.current;
            this.current = t;
            if (old !== null && old !== t) void this.terminate(old);
          }
          this.consecutiveFailures = 0;
          this.lastReason = '';
          log.info({ tracer: name, bpftracePid: proc.pid, args }, 'bpftrace attached and ready');
          if (!settled) {
            settled = true;
            clearTimeout(attachTimer);
            resolve(t);
          }
          this.opts.onState?.('attached', `bpftrace ${name} attached (pid ${proc.pid})`);
          return;
        }
        if (ev.kind === 'lost') {
          this.stats.lost += ev.count;
          log.warn({ tracer: name, lost: ev.count }, 'bpftrace lost events');
          return;
        }
        this.stats.events++;
        this.opts.onEvent(ev);
      });
      createInterface({ input: proc.stderr! }).on('line', (line) => {
        if (line.includes('RLIMIT_MEMLOCK')) return; // harmless on this kernel, printed on every run
        t.stderrTail.push(line);
        if (t.stderrTail.length > 5) t.stderrTail.shift();
      });

      void proc.exited.then((result) => {
        this.all.delete(t);
        const why = `bpftrace ${name} exited (${result.signal ?? `status ${result.exitCode}`})${t.stderrTail.length > 0 ? `: ${t.stderrTail.join(' | ')}` : ''}`;
        const wasAttached = t.attached;
        t.attached = false;
        if (!settled) {
          settled = true;
          clearTimeout(attachTimer);
          this.lastReason = why;
          reject(new SentinelError('unavailable', why, { where: this.opts.program }));
          return;
        }
        if (t.stopping || this.stopped || this.current !== t) return;
        this.stats.deaths++;
        this.lastReason = why;
        log.error({ tracer: name, reason: why, wasAttached }, 'bpftrace died; restarting with back-off');
        this.opts.onState?.('down', why);
        this.scheduleRestart();
      });
    });
  }

  // Why: a bpftrace that keeps dying must not be respawned in a tight loop.
  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer !== null) return;
    const delay = Math.max(50, backoffDelayMs(this.consecutiveFailures, this.opts.restartBackoff ?? DEFAULT_RESTART_BACKOFF));
    this.consecutiveFailures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopped) return;
      this.spawnAttached(this.wantedArgs).then(
        (t) => {
          if (this.stopped) {
            void this.terminate(t);
            return;
          }
          this.opts.log.info({ tracer: this.opts.name, restarts: this.stats.deaths }, 'bpftrace restarted');
        },
        (err: unknown) => {
          this.lastReason = messageOf(err);
          this.opts.log.error({ tracer: this.opts.name, reason: this.lastReason }, 'bpftrace restart failed; retrying');
          this.scheduleRestart();
        },
      );
    }, delay);
  }
}

/** What `sentinel doctor` says about eBPF on this host. */
export interface EbpfSupport {
  ok: boolean;
  /** bpftrace version line when found. */
  version?: string;
  /** What is missing, for `sentinel doctor` and the degraded reason. */
  reason?: string;
}

// Why: `sentinel doctor` says up front whether exit detection will be eBPF or degraded polling.
export async function checkEbpfSupport(binary = 'bpftrace'): Promise<EbpfSupport> {
  const v = await runCommand([binary, '--version'], { timeoutMs: 10_000 });
  if (!v.ok) return { ok: false, reason: `bpftrace not runnable (${binary}): ${v.startError ?? (v.message || 'failed').split('\n')[0]}` };
  const version = v.stdout.trim();
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, version, reason: 'not root: bpftrace needs CAP_BPF/CAP_PERFMON (run the daemon as root)' };
  try {
    await ensureTracefs();
  } catch (e) {
    return { ok: false, version, reason: messageOf(e) };
  }
  const l = await runCommand([binary, '-lv', 'tracepoint:sched:sched_process_exit'], { timeoutMs: 20_000 });
  if (!l.stdout.includes('group_dead')) return { ok: false, version, reason: 'tracepoint sched:sched_process_exit has no group_dead field on this kernel' };
  const r = await runCommand([binary, '-lv', 'tracepoint:tcp:tcp_retransmit_skb'], { timeoutMs: 20_000 });
  if (!r.stdout.includes('sport')) return { ok: false, version, reason: 'tracepoint tcp:tcp_retransmit_skb is missing' };
  return { ok: true, version };
}
