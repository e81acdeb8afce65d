// Tamper watch: directory watches (cheap) trigger a verify; a periodic full verify and a cheaper periodic flag audit back them up;
// the eBPF engine's flags group says at once who changed inode flags on the vault's filesystem (inotify does not).
import { stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { watchDirectories, type TreeWatch } from '../adapters/watcher.js';
import type { Logger } from '../adapters/logger.js';
import type { FlagsRecord } from '../core/bpf-records.js';
import type { Sentinel } from './sentinel.js';
import type { EbpfHost } from './ebpf-host.js';
import { messageOf } from '../core/errors.js';

/** Foreign chattr activity (another vault, a backup tool) triggers at most one flag audit per second. */
const TRACER_MIN_GAP_MS = 1_000;
/** Flag changers named in one tamper record at most. */
const MAX_ATTRIBUTED = 16;

/** Who changed inode flags on the vault's filesystem, as the kernel saw it (for the tamper's audit record). */
export interface FlagChanger {
  pid: number;
  comm: string;
  uid: number;
  ino: string;
  /** +i was on before the ioctl and off after it. */
  liftedImmutable: boolean;
}

export interface TamperWatchOptions {
  vaultPath: string;
  depth: number;
  debounceMs: number;
  verifyIntervalMs: number;
  flagAuditIntervalMs: number;
  /** Watch flag changes through the eBPF engine ('auto': when it is loaded; else the flag audit alone). */
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
  private tracerOff: (() => void) | null = null;
  private lastTracerCheck = 0;
  /** Flag changes seen since the last check they triggered. */
  private changers: FlagChanger[] = [];
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
    private readonly ebpf: EbpfHost | null = null,
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
    if (this.opts.flagTracer === 'auto') await this.startTracer();
  }

  // Why: a bare `chattr -i` raises no inotify event; the kernel's record makes its detection immediate
  // instead of periodic, and names who did it (pid, comm, uid) in the tamper's audit record.
  private async startTracer(): Promise<void> {
    const why = this.ebpf === null ? 'no eBPF engine in this daemon' : this.ebpf.unavailable;
    try {
      if (why !== null || this.ebpf === null) throw new Error(why ?? 'no eBPF engine');
      const { dev } = await stat(this.opts.vaultPath);
      this.tracerOff = this.ebpf.on('flags', (r) => this.onFlags(r));
      this.ebpf.watchFlags(dev);
      this.tracerState = 'attached';
      this.log.info({ event: 'flag-tracer', ok: true, dev }, 'flag changes on the vault filesystem traced by the eBPF engine');
    } catch (e) {
      this.tracerState = messageOf(e);
      this.log.warn({ event: 'flag-tracer', ok: false, reason: this.tracerState }, 'no flag-change tracer; a bare chattr -i is found by the periodic flag audit');
    }
  }

  private onFlags(r: FlagsRecord): void {
    if (this.closed || r.ret !== 0 || r.before === r.after) return;
    this.flagEvents++;
    if (this.changers.length < MAX_ATTRIBUTED) this.changers.push({ pid: r.pid, comm: r.comm, uid: r.uid, ino: String(r.ino), liftedImmutable: r.liftedImmutable });
    if (this.tracerTimer !== null) return;
    const wait = Math.max(this.opts.debounceMs, this.lastTracerCheck + TRACER_MIN_GAP_MS - Date.now());
    this.tracerTimer = setTimeout(() => {
      this.tracerTimer = null;
      this.lastTracerCheck = Date.now();
      const changedBy = this.changers;
      this.changers = [];
      const who = [...new Set(changedBy.map((c) => `${c.comm}[${String(c.pid)}] uid ${String(c.uid)}`))].join(', ');
      this.check(`ebpf: inode flags changed by ${who}`, true, changedBy);
    }, wait);
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

  private check(reason: string, flagsOnly: boolean, changedBy?: FlagChanger[]): void {
    if (this.closed) return;
    this.sentinel.checkTamper(reason, { flagsOnly, ...(changedBy !== undefined ? { changedBy } : {}) }).catch((e: unknown) => {
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

  close(): Promise<void> {
    this.closed = true;
    this.stopTimers();
    if (this.debounce !== null) clearTimeout(this.debounce);
    if (this.tracerTimer !== null) clearTimeout(this.tracerTimer);
    this.tracerOff?.();
    this.tracerOff = null;
    this.ebpf?.watchFlags(null);
    this.watch?.close();
    this.watch = null;
    return Promise.resolve();
  }
}
