// systemd notify/watchdog: READY, STATUS, STOPPING, and WATCHDOG=1 every WATCHDOG_USEC/2 only while healthy.
import { performance } from 'node:perf_hooks';
import { formatNotify, type NotifyState, type WatchdogSettings } from '../core/sd-notify.js';
import type { Notifier } from '../adapters/notify.js';
import type { Logger } from '../adapters/logger.js';
import { messageOf } from '../core/errors.js';

/** How often the event-loop drift is sampled. */
const LAG_SAMPLE_MS = 50;

export interface HealthVerdict {
  ok: boolean;
  reason?: string;
}

export interface WatchdogOptions {
  notifier: Notifier | null;
  settings: WatchdogSettings | null;
  log: Logger;
  maxEventLoopLagMs: number;
  /** Health of everything but the event loop (last verify recent, components not failed). */
  health(): HealthVerdict;
  statusLine(): string;
}

// Why: systemd restarts a hung daemon only if the daemon stops pinging when it is unhealthy, not just when it is frozen.
export class SystemdNotifier {
  private timer: NodeJS.Timeout | null = null;
  private lagTimer: NodeJS.Timeout | null = null;
  private lastBeat = 0;
  private maxLagMs = 0;
  private lastStatus = '';
  private lastVerdict: HealthVerdict = { ok: true };
  pings = 0;

  constructor(private readonly opts: WatchdogOptions) {}

  // Why: a timer-drift check; perf_hooks.monitorEventLoopDelay was seen to miss a single 400 ms stall on Node 20.
  private startLagSampler(): void {
    this.lastBeat = performance.now();
    this.lagTimer = setInterval(() => {
      const now = performance.now();
      this.maxLagMs = Math.max(this.maxLagMs, now - this.lastBeat - LAG_SAMPLE_MS);
      this.lastBeat = now;
    }, LAG_SAMPLE_MS);
    this.lagTimer.unref();
  }

  get enabled(): boolean {
    return this.opts.notifier !== null;
  }

  get watchdog(): WatchdogSettings | null {
    return this.opts.settings;
  }

  get verdict(): HealthVerdict {
    return this.lastVerdict;
  }

  private async send(state: NotifyState): Promise<void> {
    if (this.opts.notifier === null) return;
    try {
      await this.opts.notifier.send(formatNotify(state));
    } catch (e) {
      this.opts.log.warn({ event: 'sd-notify-failed', err: messageOf(e) }, 'sd_notify failed');
    }
  }

  // Why: READY=1 goes out only after the vault was opened and verified.
  async ready(): Promise<void> {
    this.lastStatus = this.opts.statusLine();
    await this.send({ ready: true, status: this.lastStatus, mainPid: process.pid });
    if (this.opts.settings !== null && this.opts.notifier !== null) {
      this.startLagSampler();
      this.timer = setInterval(() => {
        void this.tick();
      }, this.opts.settings.pingIntervalMs);
      this.timer.unref();
    }
  }

  // Why: event-loop lag is measured over each ping interval; a spike above the bound withholds that ping.
  healthNow(): HealthVerdict {
    const pendingMs = performance.now() - this.lastBeat - LAG_SAMPLE_MS;
    const maxLagMs = Math.max(this.maxLagMs, pendingMs);
    this.maxLagMs = 0;
    if (maxLagMs > this.opts.maxEventLoopLagMs) return { ok: false, reason: `event loop lag ${maxLagMs.toFixed(0)} ms > ${String(this.opts.maxEventLoopLagMs)} ms` };
    return this.opts.health();
  }

  private async tick(): Promise<void> {
    const verdict = this.healthNow();
    if (verdict.ok !== this.lastVerdict.ok) {
      if (verdict.ok) this.opts.log.info({ event: 'watchdog', healthy: true }, 'healthy again; watchdog pings resumed');
      else this.opts.log.error({ event: 'watchdog', healthy: false, reason: verdict.reason }, 'unhealthy; withholding watchdog pings');
    }
    this.lastVerdict = verdict;
    const status = this.opts.statusLine();
    const statusChanged = status !== this.lastStatus;
    this.lastStatus = status;
    if (verdict.ok) {
      this.pings++;
      await this.send({ watchdog: true, ...(statusChanged ? { status } : {}) });
    } else if (statusChanged) {
      await this.send({ status });
    }
  }

  // Why: STATUS= kept current between pings when something visible changes.
  async status(): Promise<void> {
    const status = this.opts.statusLine();
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    await this.send({ status });
  }

  async reloading(done: boolean): Promise<void> {
    if (done) await this.send({ ready: true, status: this.opts.statusLine() });
    else await this.send({ reloading: true, monotonicUsec: process.hrtime.bigint() / 1000n });
  }

  async stopping(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.lagTimer !== null) clearInterval(this.lagTimer);
    this.lagTimer = null;
    await this.send({ stopping: true, status: 'stopping' });
  }
}
