// The bytes of request data held in memory across every control client at once (docs/DAEMON.md#control-socket).

// Why: a per-client cap alone lets many clients together take any amount; a full budget pauses readers instead.
export class ByteBudget {
  used = 0;
  /** The most ever held at once (for `status` and the tests). */
  peak = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get hasRoom(): boolean {
    return this.used < this.limit;
  }

  take(n: number): void {
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
    while (this.hasRoom && this.waiters.length > 0) this.waiters.shift()?.();
  }

  /** Resolves once the budget has room again (readers waiting are woken in arrival order). */
  waitRoom(): Promise<void> {
    if (this.hasRoom) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
