// Tamper watch: directory watches (cheap) trigger a verify; a periodic full verify and a cheaper periodic flag audit back them up.
import { sep } from 'node:path';
import { watchDirectories, watchFlagChanges, type FlagChangeWatch, type TreeWatch } from '../adapters/watcher.js';
import type { Logger } from '../adapters/logger.js';
import type { Sentinel } from './sentinel.js';
import { messageOf } from '../core/errors.js';

/** Foreign chattr activity (another vault, a backup tool) triggers at most one flag audit per second. */
const TRACER_MIN_GAP_MS = 1_000;

export interface TamperWatchOptions {
  vaultPath: string;
  depth: number;
  debounceMs: number;
  verifyIntervalMs: number;
  flagAuditIntervalMs: number;
  /** Run the bpftrace flag-change detector ('auto': when bpftrace attaches; else the flag audit alone). */
  flagTracer: 'auto' | 'off';
}

// Why: detect a tamper within milliseconds without one watch per file (idle RSS bound).
export class TamperWatch {
  private watch: TreeWatch | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private verifyTimer: NodeJS.Timeout | null = null;
  private flagTimer: NodeJS.Timeout | null = null;
  private lastOps = -1;
  private closed = false;
  private tracer: FlagChangeWatch | null = null;
  private tracerStart: Promise<void> = Promise.resolve();
  private lastTracerCheck = 0;
  private tracerTimer: NodeJS.Timeout | null = null;
  /** 'attached', 'off', or why the tracer is not running. */
  tracerState = 'off';
  lastEventPath: string | null = null;
  events = 0;
  flagEvents = 0;

  constructor(
    private readonly sentinel: Sentinel,
    private readonly log: Logger,
    private opts: TamperWatchOptions,
  ) {}

  get watchedDirectories(): number {
    return this.watch?.watched ?? 0;
  }

  async start(): Promise<void> {
    await this.rewatch();
    this.sentinel.subscribe(() => {
      const ops = this.sentinel.counters.deploys + this.sentinel.counters.heals;
      if (ops !== this.lastOps && !this.closed) void this.rewatch();
    });
    this.startTimers();
    if (this.opts.flagTracer === 'auto') {
      this.tracerState = 'starting';
      this.tracerStart = this.startTracer();
    }
  }

  // Why: a bare `chattr -i` raises no inotify event; the tracepoint makes its detection immediate instead of periodic.
  // Started in the background: READY=1 does not wait for bpftrace to attach (0.5-0.8 s, or a 10 s timeout).
  private async startTracer(): Promise<void> {
    try {
      this.tracer = await watchFlagChanges({
        ownPid: process.pid,
        onChange: (pid, comm) => {
          if (this.closed) return;
          this.flagEvents++;
          if (this.tracerTimer !== null) return;
          const wait = Math.max(this.opts.debounceMs, this.lastTracerCheck + TRACER_MIN_GAP_MS - Date.now());
          this.tracerTimer = setTimeout(() => {
            this.tracerTimer = null;
            this.lastTracerCheck = Date.now();
            this.check(`ebpf: inode flags changed by ${comm}[${String(pid)}]`, true);
          }, wait);
        },
        onExit: (reason) => {
          this.tracer = null;
          this.tracerState = reason;
          if (!this.closed) this.log.warn({ event: 'flag-tracer', ok: false, reason }, 'flag-change tracer stopped; the periodic flag audit remains');
        },
      });
      if (this.closed) {
        await this.tracer.close();
        this.tracer = null;
        return;
      }
      this.tracerState = 'attached';
      this.log.info({ event: 'flag-tracer', ok: true }, 'flag changes traced with bpftrace');
    } catch (e) {
      this.tracerState = messageOf(e);
      this.log.warn({ event: 'flag-tracer', ok: false, reason: this.tracerState }, 'no flag-change tracer; a bare chattr -i is found by the periodic flag audit');
    }
  }

  private startTimers(): void {
    this.verifyTimer = setInterval(() => this.check('periodic verify', false), this.opts.verifyIntervalMs);
    this.flagTimer = setInterval(() => this.check('flag audit', true), this.opts.flagAuditIntervalMs);
  }

  private stopTimers(): void {
    if (this.verifyTimer !== null) clearInterval(this.verifyTimer);
    if (this.flagTimer !== null) clearInterval(this.flagTimer);
    this.verifyTimer = null;
    this.flagTimer = null;
  }

  // Why: SIGHUP may change the periods.
  reconfigure(opts: TamperWatchOptions): void {
    this.opts = opts;
    this.stopTimers();
    this.startTimers();
  }

  private check(reason: string, flagsOnly: boolean): void {
    if (this.closed) return;
    this.sentinel.checkTamper(reason, { flagsOnly }).catch((e: unknown) => {
      this.log.error({ event: 'tamper-check-failed', reason, err: messageOf(e) }, 'tamper check failed');
    });
  }

  // Why: after a deploy or heal the live release is a new directory tree; watches follow it.
  private async rewatch(): Promise<void> {
    this.lastOps = this.sentinel.counters.deploys + this.sentinel.counters.heals;
    const old = this.watch;
    this.watch = null;
    old?.close();
    const staging = `${this.opts.vaultPath}${sep}staging`;
    const w = await watchDirectories([this.opts.vaultPath], {
      depth: this.opts.depth,
      onEvent: (path) => {
        if (this.closed || path === staging || path.startsWith(`${staging}${sep}`)) return;
        // The daemon's own deploy or heal writes the vault; a verify writes nothing, so an event then is foreign.
        const busy = this.sentinel.busyWith;
        if (busy !== null && !busy.startsWith('verify')) return;
        this.events++;
        this.lastEventPath = path;
        if (this.debounce !== null) return;
        this.debounce = setTimeout(() => {
          this.debounce = null;
          this.check(`watch: ${this.lastEventPath ?? path}`, false);
        }, this.opts.debounceMs);
      },
      onError: (err) => this.log.warn({ event: 'watch-error', err: err.message }, 'directory watch error'),
    });
    if (this.closed) {
      w.close();
      return;
    }
    const raced = this.watch as TreeWatch | null;
    raced?.close();
    this.watch = w;
    this.log.debug({ event: 'watch', directories: w.watched }, 'watching the vault');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopTimers();
    if (this.debounce !== null) clearTimeout(this.debounce);
    if (this.tracerTimer !== null) clearTimeout(this.tracerTimer);
    await this.tracerStart;
    const tracer = this.tracer;
    this.tracer = null;
    await tracer?.close();
    this.watch?.close();
    this.watch = null;
  }
}
