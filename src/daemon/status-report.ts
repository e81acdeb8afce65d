// What the daemon says about itself: the one-line STATUS=, the watchdog's health verdict, and the
// `status` report over the control socket, assembled from the parts (docs/DAEMON.md#status).
import { performance } from 'node:perf_hooks';
import type { DaemonConfig } from './config.js';
import type { AuditRecorder } from './audit-recorder.js';
import type { DaemonComponent } from './components.js';
import type { Inbox } from './inbox.js';
import type { OnDemandHashPool } from './on-demand-hash-pool.js';
import type { Sentinel } from './sentinel.js';
import type { TamperWatch } from './tamper-watch.js';
import type { HealthVerdict, SystemdNotifier } from './watchdog.js';
import type { ControlServer } from './control-server.js';
import type { ConfigReloader } from './reloader.js';

/** Where the status comes from; parts made later (the notifier, the inbox) are read when asked. */
export interface StatusSources {
  version: string;
  /** performance.now() at start. */
  startedAt: number;
  config(): DaemonConfig;
  sentinel: Sentinel;
  recorder: AuditRecorder;
  hash: OnDemandHashPool;
  components: readonly DaemonComponent[];
  tamper(): TamperWatch | null;
  inbox(): Inbox | null;
  notifier(): SystemdNotifier | null;
  control(): ControlServer | null;
  /** The reloader, once the daemon is up (its last verdict shows in STATUS= and `status`). */
  reload?(): ConfigReloader | null;
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${String(s)}s` : `${String(Math.round(s / 60))}m`;
}

// Why: the composition root builds the parts; what they add up to is said here, in one place.
export class DaemonStatus {
  constructor(private readonly s: StatusSources) {}

  // Why: systemd's STATUS= and the `ready` log line: the vault, the counters, then each duty.
  line(): string {
    const { sentinel } = this.s;
    const lv = sentinel.lastVerify;
    const parts = [
      lv === null ? 'vault: not verified' : lv.empty === true ? 'vault empty: waiting for the first signed release' : `vault v${String(lv.version ?? '?')} ${lv.releaseId ?? '?'} ${lv.ok ? 'intact' : 'VIOLATED'} (verified ${ago(performance.now() - lv.atMs)} ago)`,
      `deploys ${String(sentinel.counters.deploys)}, rejects ${String(sentinel.counters.rejects)}, tampers ${String(sentinel.counters.tampers)}, heals ${String(sentinel.counters.heals)}`,
    ];
    if (lv !== null && !lv.ok && sentinel.lastError !== null) parts.push(sentinel.lastError);
    const tail = sentinel.lastDeployTail;
    if (tail !== null && !tail.ok) parts.push(`v${String(tail.version)} is live, but the deploy's tail failed: ${tail.warning ?? '?'}`);
    if (this.s.recorder.failing) parts.push(`audit log not writable: ${String(this.s.recorder.state.held)} records held`);
    if (sentinel.busyWith !== null) parts.push(`busy: ${sentinel.busyWith.split(' ')[0] ?? ''}`);
    const rejected = this.s.reload?.()?.rejection() ?? null;
    if (rejected !== null) parts.push(`reload rejected, running the previous configuration: ${rejected}`);
    for (const c of this.s.components) parts.push(c.statusLine());
    return parts.join('; ');
  }

  // Why: what withholds WATCHDOG=1 (with the event loop): the daemon cannot do its job — never verified, a verify
  // overdue, a failed duty. A restart may fix those (docs/DAEMON.md#systemd-watchdog).
  health(): HealthVerdict {
    const { sentinel } = this.s;
    const limits = this.s.config().limits;
    const lv = sentinel.lastVerify;
    if (lv === null) return { ok: false, reason: 'vault never verified' };
    const age = performance.now() - lv.atMs;
    const busyLong = sentinel.busyWith !== null;
    if (!busyLong && age > limits.verifyIntervalMs + limits.maxVerifyAgeMs) return { ok: false, reason: `last verify ${ago(age)} ago` };
    for (const c of this.s.components) {
      const failed = c.failed?.();
      if (failed !== undefined && failed !== null) return { ok: false, reason: failed };
    }
    return { ok: true };
  }

  // Why: what `status` calls healthy: alive as above, and nothing guarded is in a bad state the daemon could not
  // fix — a violated vault (its heal failing, or onTamper alert), an audit log it cannot write. A restart would fix
  // neither (and would lose held audit records), so these are reported, not left to systemd.
  condition(): HealthVerdict {
    const h = this.health();
    if (!h.ok) return h;
    const { sentinel, recorder } = this.s;
    const lv = sentinel.lastVerify;
    if (lv !== null && !lv.ok) return { ok: false, reason: `vault VIOLATED${sentinel.lastError !== null ? `; ${sentinel.lastError}` : this.s.config().vault.onTamper === 'alert' ? ' (onTamper is alert: not healed)' : ''}` };
    if (recorder.failing) return { ok: false, reason: `audit log writes failing since ${recorder.state.failingSince ?? '?'} (${recorder.state.error ?? ''}); ${String(recorder.state.held)} records held` };
    return { ok: true };
  }

  // Why: `sentinel status --json`: everything a person checking the host asks first.
  async report(): Promise<unknown> {
    const { sentinel, recorder, hash } = this.s;
    // The one wait comes first: everything below is read at the same instant, so the reason, the status line and
    // the counters never describe two different moments (a heal may end during the wait).
    const vault = await sentinel.status();
    const config = this.s.config();
    const notifier = this.s.notifier();
    const tamper = this.s.tamper();
    const inbox = this.s.inbox();
    const control = this.s.control();
    const health = this.condition();
    return {
      daemon: { pid: process.pid, version: this.s.version, uptimeMs: Math.round(performance.now() - this.s.startedAt), memory: process.memoryUsage(), hashWorkers: hash.active, busyWith: sentinel.busyWith, queued: sentinel.queueLength, statusLine: this.line() },
      vault: { ...vault, lastVerify: sentinel.lastVerify === null ? null : { ...sentinel.lastVerify, agoMs: Math.round(performance.now() - sentinel.lastVerify.atMs) }, lastDeployTail: sentinel.lastDeployTail, onTamper: config.vault.onTamper },
      watchdog: { notify: notifier?.enabled ?? false, periodUsec: notifier?.watchdog?.periodUsec ?? null, pings: notifier?.pings ?? 0, pinging: this.health().ok, healthy: health.ok, reason: health.reason ?? null },
      counters: { ...sentinel.counters },
      reload: this.s.reload?.()?.last ?? null,
      audit: { path: config.audit.path, ...recorder.state },
      tamperWatch: tamper === null ? null : { directories: tamper.watchedDirectories, events: tamper.events, flagTracer: tamper.tracerState, flagEvents: tamper.flagEvents },
      control: control === null ? null : { connections: control.connections, served: control.served, evicted: control.evicted, refused: control.refused, bufferedBytes: control.bufferedBytes, peakBufferedBytes: control.peakBufferedBytes },
      inbox: inbox === null ? null : { dir: config.vault.inbox, processed: inbox.processed, ...inbox.state },
      components: Object.fromEntries(this.s.components.map((c) => [c.name, c.status()])),
    };
  }
}
