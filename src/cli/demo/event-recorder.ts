// Records the target supervisor's audit events and lets the demo (and tests, benches) wait for the next
// matching one instead of sleeping.
import type { TargetAuditEvent } from '../../daemon/targets/index.js';

// Why: a step waits for an event, not for a sleep; a missing event fails saying what was expected.
export class TargetEventRecorder {
  readonly events: TargetAuditEvent[] = [];
  private readonly waiters: { match: (e: TargetAuditEvent) => boolean; resolve: (e: TargetAuditEvent) => void }[] = [];

  readonly record = (e: TargetAuditEvent): void => {
    this.events.push(e);
    for (const w of [...this.waiters]) {
      if (!w.match(e)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(e);
    }
  };

  // Why: the first matching event from `fromIndex` on, already seen or still to come, within `timeoutMs`.
  next(match: (e: TargetAuditEvent) => boolean, timeoutMs: number, what: string, fromIndex = this.events.length): Promise<TargetAuditEvent> {
    const seen = this.events.slice(fromIndex).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${this.events.map((e) => e.event).join(', ')}`));
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (e: TargetAuditEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }
}
