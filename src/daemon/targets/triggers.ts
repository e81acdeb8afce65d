// Recovery triggers besides an exit: a health probe that catches a live but hung process, and a TCP
// retransmit rate on the target's port above its threshold (docs/EBPF.md#recovery).
import type { Logger } from 'pino';
import { RetransmitRateMonitor } from '../../core/recovery-policy.js';
import { httpProbe } from '../../adapters/http-probe.js';
import type { TargetSpec } from './spec.js';
import type { RetransmitHit, RetransmitSource, TargetAuditEvent, TargetState } from './types.js';

/** What a trigger sees of its target. */
export interface TriggerTarget {
  readonly spec: TargetSpec;
  readonly pid: number | null;
  readonly state: TargetState;
}

/** What a trigger may do: log, audit, read the clocks, and start a recovery. */
export interface TriggerDeps {
  log: Logger;
  emit(event: TargetAuditEvent): void;
  hrtimeNs(): bigint;
  now(): number;
  /** Start recovering the target: why, and since when (CLOCK_MONOTONIC ns) for the latency. */
  recover(target: TriggerTarget, reason: string, sinceNs: bigint): void;
}

// Why: a health URL may carry basic-auth credentials; logs and the audit log name the URL without them.
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

// Why: a live but hung process (deadlock, stuck GIL) is only visible to a request; `failures` failed
// probes in a row trip recovery, one probe at a time per target.
export class HealthProbes {
  private readonly probes = new Map<TriggerTarget, { failures: number; busy: boolean }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private running = false;

  constructor(
    targets: readonly TriggerTarget[],
    private readonly deps: TriggerDeps,
  ) {
    for (const t of targets) if (t.spec.health !== undefined) this.probes.set(t, { failures: 0, busy: false });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const t of this.probes.keys()) this.timers.push(setInterval(() => void this.probe(t), t.spec.health?.intervalMs ?? 1000));
  }

  stop(): void {
    this.running = false;
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }

  /** Failed probes in a row so far. */
  failures(target: TriggerTarget): number {
    return this.probes.get(target)?.failures ?? 0;
  }

  /** A new process starts with a clean count. */
  reset(target: TriggerTarget): void {
    const p = this.probes.get(target);
    if (p !== undefined) p.failures = 0;
  }

  private async probe(t: TriggerTarget): Promise<void> {
    const health = t.spec.health;
    const p = this.probes.get(t);
    if (health === undefined || p === undefined || p.busy || t.state !== 'running' || t.pid === null || !this.running) return;
    p.busy = true;
    const pid = t.pid;
    const startNs = this.deps.hrtimeNs();
    try {
      const r = await httpProbe(health.url, health.timeoutMs);
      if (t.pid !== pid || t.state !== 'running' || !this.running) return;
      if (r.ok) {
        p.failures = 0;
        return;
      }
      p.failures++;
      this.deps.log.warn({ target: t.spec.name, pid, error: r.error, failures: p.failures, of: health.failures }, 'health probe failed');
      if (p.failures < health.failures) return;
      const failures = p.failures;
      p.failures = 0;
      this.deps.emit({ event: 'health-failed', target: t.spec.name, pid, failures, error: r.error, url: withoutCredentials(health.url) });
      this.deps.recover(t, `health probe failed ${failures} times in a row (${r.error})`, startNs);
    } finally {
      p.busy = false;
    }
  }
}

// Why: retransmits on a target's port above `threshold` within `windowMs` raise one alarm (and with
// action "restart" a recovery); the alarm clears only at `clearBelow`, so a rate near the threshold does not flap.
export class RetransmitAlarm {
  private readonly monitors = new Map<TriggerTarget, RetransmitRateMonitor>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    targets: readonly TriggerTarget[],
    private readonly source: RetransmitSource,
    private readonly checkIntervalMs: number,
    private readonly deps: TriggerDeps,
  ) {
    for (const t of targets) {
      const rt = t.spec.retransmit;
      if (rt !== undefined) this.monitors.set(t, new RetransmitRateMonitor({ threshold: rt.threshold, windowMs: rt.windowMs, clearBelow: rt.clearBelow ?? Math.floor(rt.threshold / 2) }));
    }
  }

  /** Why retransmits are not counted for `target`, or null (also null when it configures none). */
  degraded(target: TriggerTarget): string | null {
    return this.monitors.has(target) ? this.source.degraded : null;
  }

  alarm(target: TriggerTarget): boolean {
    return this.monitors.get(target)?.alarm ?? false;
  }

  async start(): Promise<void> {
    if (this.monitors.size === 0) return;
    await this.source.start([...new Set([...this.monitors.keys()].map((t) => t.spec.port))]);
    this.timer = setInterval(() => this.tick(), this.checkIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.source.stop();
  }

  /** Retransmits from the kernel source (a count since the last hit of that port). */
  onRetransmit(e: RetransmitHit): void {
    const nowMs = this.deps.now();
    for (const [t, monitor] of this.monitors) {
      if (t.spec.port !== e.sport) continue;
      const tr = monitor.add(nowMs, e.count);
      if (tr?.kind === 'raised') this.raised(t, tr.count, e.ns);
    }
  }

  private tick(): void {
    const nowMs = this.deps.now();
    for (const [t, monitor] of this.monitors) {
      const tr = monitor.tick(nowMs);
      if (tr?.kind !== 'cleared') continue;
      this.deps.log.info({ target: t.spec.name, count: tr.count }, 'retransmit rate back to normal');
      this.deps.emit({ event: 'retransmit-cleared', target: t.spec.name, port: t.spec.port, count: tr.count });
    }
  }

  private raised(t: TriggerTarget, count: number, ns: bigint): void {
    const cfg = t.spec.retransmit;
    if (cfg === undefined) return;
    const fields = { target: t.spec.name, port: t.spec.port, count, windowMs: cfg.windowMs, threshold: cfg.threshold, action: cfg.action };
    this.deps.log.warn(fields, 'TCP retransmit rate above threshold');
    this.deps.emit({ event: 'retransmit-alarm', ...fields });
    if (cfg.action === 'restart' && t.state === 'running') this.deps.recover(t, `${count} TCP retransmits on port ${t.spec.port} within ${cfg.windowMs} ms`, ns);
  }
}
