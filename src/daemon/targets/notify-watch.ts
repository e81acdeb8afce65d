// The sentinel as the service manager of a `command` target with `watchdog`: the child gets
// NOTIFY_SOCKET and WATCHDOG_USEC, counts as started only after READY=1, and when its WATCHDOG=1
// pings stop it gets systemd's treatment: the watchdog signal (SIGABRT: faulthandler writes every
// thread's stack), SIGKILL after the abort timeout, then the ordinary exit → restart through the
// budget (docs/EBPF.md#notify-socket-of-command-targets).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SentinelError } from '../../core/errors.js';
import { listenNotify, type NotifyMessage, type NotifySocket } from '../../adapters/notify-listener.js';
import { killPid, type SupervisedChild } from '../../adapters/process.js';
import type { TargetSpec } from './spec.js';
import type { TargetAuditEvent } from './types.js';

/** Bounds of the stack dump kept for the audit log: what a faulthandler dump of a few dozen threads needs. */
const DUMP_LINES = 400;
const DUMP_CHARS = 65_536;

type WatchdogSpec = NonNullable<TargetSpec['watchdog']>;

/** What the watch reports through. */
export interface NotifyWatchDeps {
  log: Logger;
  emit(event: TargetAuditEvent): void;
}

// Why: one per `command` target with `watchdog`; the launcher starts each new process through it.
export class NotifyWatch {
  private socket: NotifySocket | null = null;
  private dir: string | null = null;
  private pid: number | null = null;
  private child: SupervisedChild | null = null;
  private waiter: { resolve(): void; reject(e: Error): void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private escalation: NodeJS.Timeout | null = null;
  private lastPingAt = 0;
  private stopping = false;
  private dump: string[] | null = null;
  private dumpChars = 0;
  private pending = '';
  private closed = false;
  /** Messages of unknown senders, kept briefly: a fast child may speak before start() knows its PID. */
  private readonly early: NotifyMessage[] = [];
  /** The main process's last STATUS=. */
  status: string | null = null;
  pings = 0;
  /** Datagrams from any other process (not the main PID), dropped as systemd's NotifyAccess=main does. */
  foreign = 0;

  constructor(
    private readonly name: string,
    private readonly spec: WatchdogSpec,
    private readonly deps: NotifyWatchDeps,
  ) {}

  // Why: the socket lives in a private directory of ours (mode 0700), made on first use.
  async open(): Promise<void> {
    if (this.socket !== null) return;
    if (this.closed) throw new SentinelError('unavailable', 'the target is stopping', { where: this.name });
    this.dir ??= await mkdtemp(join(tmpdir(), 'sentinel-notify-'));
    this.socket = await listenNotify(join(this.dir, `${this.name}.notify`), (m) => this.onMessage(m));
  }

  /** The child's environment: our socket, the watchdog period (sd_watchdog_enabled(3)), no WATCHDOG_PID. */
  env(): Record<string, string | null> {
    return { NOTIFY_SOCKET: this.socket?.path ?? null, WATCHDOG_USEC: String(this.spec.timeoutMs * 1000), WATCHDOG_PID: null };
  }

  // Why: a new main process: its READY=1 is what "started" means; bounded by startTimeoutMs, and
  // an exit before it fails the start at once.
  async start(child: SupervisedChild, forward: boolean, startTimeoutMs: number): Promise<void> {
    this.disarm();
    this.pid = child.pid;
    this.child = child;
    this.stopping = false;
    this.status = null;
    this.dump = null;
    this.capture(child, forward);
    const started = child.pid;
    child.onExit((exit) => this.onExit(started, exit.signal));
    let timer: NodeJS.Timeout | null = null;
    try {
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve, reject };
        for (const m of this.early.splice(0)) if (m.pid === started) this.onMessage(m);
        timer = setTimeout(() => reject(new SentinelError('unavailable', `no READY=1 within ${String(startTimeoutMs)} ms of its start${this.status === null ? '' : ` (last STATUS=${this.status})`}`, { where: this.name })), startTimeoutMs);
        child.onExit((exit) => reject(new SentinelError('unavailable', `exited before READY=1 (${exit.signal ?? `status ${String(exit.exitCode)}`})`, { where: this.name })));
      });
    } finally {
      if (timer !== null) clearTimeout(timer);
      this.waiter = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    this.waiter?.reject(new SentinelError('unavailable', 'the target is stopping', { where: this.name }));
    await this.socket?.close();
    this.socket = null;
    if (this.dir !== null) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private onMessage(m: NotifyMessage): void {
    if (m.pid !== this.pid || this.pid === null) {
      this.foreign++;
      this.early.push(m);
      if (this.early.length > 16) this.early.shift();
      this.deps.log.debug({ target: this.name, pid: m.pid, mainPid: this.pid }, 'notify message not from the main process; ignored');
      return;
    }
    const status = m.fields.get('STATUS');
    if (status !== undefined) this.status = status;
    if (m.fields.get('STOPPING') === '1') {
      this.stopping = true;
      this.disarm();
    }
    if (m.fields.get('READY') === '1' && this.waiter !== null) {
      this.deps.log.info({ target: this.name, pid: m.pid, status: this.status }, 'target sent READY=1');
      this.waiter.resolve();
      this.arm();
    }
    const ping = m.fields.get('WATCHDOG');
    if (ping === '1' && !this.stopping && this.waiter === null) {
      this.pings++;
      this.arm();
    } else if (ping === 'trigger') {
      this.fire('WATCHDOG=trigger');
    }
  }

  private arm(): void {
    this.lastPingAt = performance.now();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(`no WATCHDOG=1 for ${String(this.spec.timeoutMs)} ms`), this.spec.timeoutMs);
  }

  private disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.escalation !== null) clearTimeout(this.escalation);
    this.timer = null;
    this.escalation = null;
  }

  // Why: what systemd does on a watchdog timeout: the watchdog signal first (the stack dump), SIGKILL
  // after abortTimeoutMs; the exit that follows is recovered like any other.
  private fire(why: string): void {
    const pid = this.pid;
    const child = this.child;
    if (pid === null || child === null || !child.running) return;
    this.disarm();
    const lastPingAgoMs = Math.round(performance.now() - this.lastPingAt);
    this.deps.log.error({ target: this.name, pid, signal: this.spec.signal, lastPingAgoMs, status: this.status }, `watchdog timeout: ${why}`);
    this.deps.emit({ event: 'watchdog-timeout', target: this.name, pid, reason: why, lastPingAgoMs, signal: this.spec.signal, status: this.status });
    this.dump = [];
    this.dumpChars = 0;
    killPid(pid, this.spec.signal);
    if (this.spec.signal !== 'SIGKILL') {
      this.escalation = setTimeout(() => {
        if (child.running) {
          this.deps.log.warn({ target: this.name, pid, abortTimeoutMs: this.spec.abortTimeoutMs }, 'still running after the watchdog signal; SIGKILL');
          killPid(pid, 'SIGKILL');
        }
      }, this.spec.abortTimeoutMs);
    }
  }

  // Why: the evidence of a watchdog kill (every thread's stack) goes to the audit log with the exit.
  private onExit(pid: number, signal: string | null): void {
    if (pid !== this.pid) return;
    this.disarm();
    const dump = this.dump;
    this.dump = null;
    if (dump === null) return;
    if (this.pending !== '') dump.push(this.pending);
    this.pending = '';
    this.deps.emit({ event: 'stack-dump', target: this.name, pid, signal, evidence: dump.slice(0, DUMP_LINES), evidenceLines: dump.length });
  }

  // Why: the child's stderr is read (so it never blocks on a full pipe) and passed on when the daemon
  // shows its children's output; after a watchdog signal its lines are kept as the stack dump.
  private capture(child: SupervisedChild, forward: boolean): void {
    child.stdout?.on('data', (d: Buffer) => forward && process.stdout.write(d));
    child.stderr?.on('data', (d: Buffer) => {
      if (forward) process.stderr.write(d);
      if (this.dump === null || this.child !== child) return;
      const lines = (this.pending + d.toString('utf8')).split('\n');
      this.pending = lines.pop() ?? '';
      for (const line of lines) {
        if (this.dump.length >= DUMP_LINES || this.dumpChars + line.length > DUMP_CHARS) return;
        this.dump.push(line.slice(0, 1000));
        this.dumpChars += line.length;
      }
    });
  }
}
