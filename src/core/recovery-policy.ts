// Pure recovery decisions: back-off, a restart budget like systemd's
// StartLimitBurst/StartLimitIntervalSec, and a retransmit-rate alarm with hysteresis.
// Time is always a parameter (milliseconds on any monotonic clock).

export interface BackoffPolicy {
  /** Delay before the second restart inside the budget window; the first runs at once. */
  initialMs: number;
  maxMs: number;
  factor: number;
}

export interface RestartBudgetPolicy {
  /** At most `burst` restarts inside any `intervalMs` window (StartLimitBurst). */
  burst: number;
  /** The window (StartLimitIntervalSec, in ms). */
  intervalMs: number;
}

// Why: the first restart must beat any health check, later ones must not become a restart storm.
export function backoffDelayMs(recentRestarts: number, policy: BackoffPolicy): number {
  if (recentRestarts <= 0) return 0;
  const delay = policy.initialMs * Math.pow(policy.factor, recentRestarts - 1);
  return Math.min(policy.maxMs, Math.max(0, delay));
}

export type RestartDecision =
  | { allow: true; delayMs: number; recentRestarts: number }
  | { allow: false; reason: string; recentRestarts: number };

/** A crash-loop guard: remembers restart times and says whether another one is allowed. */
export class RestartBudget {
  private readonly times: number[] = [];
  private exhaustedAt: number | null = null;

  constructor(
    readonly budget: RestartBudgetPolicy,
    readonly backoff: BackoffPolicy,
  ) {}

  private prune(nowMs: number): void {
    while (this.times.length > 0 && nowMs - (this.times[0] ?? nowMs) >= this.budget.intervalMs) this.times.shift();
  }

  /** Restarts counted in the window ending at `nowMs`. */
  recent(nowMs: number): number {
    this.prune(nowMs);
    return this.times.length;
  }

  /** Once exhausted the budget stays exhausted until `reset()`, as systemd's start limit does. */
  get exhausted(): boolean {
    return this.exhaustedAt !== null;
  }

  // Why: StartLimitBurst semantics; a crash loop stops restarting and says why.
  decide(nowMs: number): RestartDecision {
    const recentRestarts = this.recent(nowMs);
    if (this.exhaustedAt !== null || recentRestarts >= this.budget.burst) {
      this.exhaustedAt ??= nowMs;
      return {
        allow: false,
        recentRestarts,
        reason: `restart budget exhausted: ${recentRestarts} restarts within ${this.budget.intervalMs} ms (burst ${this.budget.burst}); not restarting again`,
      };
    }
    return { allow: true, delayMs: backoffDelayMs(recentRestarts, this.backoff), recentRestarts };
  }

  /** Count a restart that was started at `nowMs`. */
  record(nowMs: number): void {
    this.prune(nowMs);
    this.times.push(nowMs);
  }

  reset(): void {
    this.times.length = 0;
    this.exhaustedAt = null;
  }
}

export interface RetransmitPolicy {
  /** Retransmits inside the window at or above which the alarm is raised. */
  threshold: number;
  windowMs: number;
  /** The alarm clears only when the count falls to or below this (hysteresis). */
  clearBelow: number;
}

export type RateTransition = { kind: 'raised'; count: number } | { kind: 'cleared'; count: number } | null;

/** Sliding-window retransmit counter with hysteresis, so a rate near the threshold does not flap. */
export class RetransmitRateMonitor {
  private readonly times: number[] = [];
  private raised = false;

  constructor(readonly policy: RetransmitPolicy) {}

  private prune(nowMs: number): void {
    while (this.times.length > 0 && nowMs - (this.times[0] ?? nowMs) >= this.policy.windowMs) this.times.shift();
  }

  get alarm(): boolean {
    return this.raised;
  }

  count(nowMs: number): number {
    this.prune(nowMs);
    return this.times.length;
  }

  // Why: the alarm fires once when the rate crosses the threshold, not on every retransmit after.
  add(nowMs: number, n = 1): RateTransition {
    this.prune(nowMs);
    for (let i = 0; i < n; i++) this.times.push(nowMs);
    return this.evaluate();
  }

  /** Re-evaluate with no new event (call periodically so a quiet port clears the alarm). */
  tick(nowMs: number): RateTransition {
    this.prune(nowMs);
    return this.evaluate();
  }

  private evaluate(): RateTransition {
    const count = this.times.length;
    if (!this.raised && count >= this.policy.threshold) {
      this.raised = true;
      return { kind: 'raised', count };
    }
    if (this.raised && count <= this.policy.clearBelow) {
      this.raised = false;
      return { kind: 'cleared', count };
    }
    return null;
  }
}
