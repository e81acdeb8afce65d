// What the guardian has already recorded of a tamper that is still there, so a problem the heal cannot repair
// (one outside the live release: a stray file in state/, a damaged state/highest.json) is recorded and healed
// once, not again every verify period, while a new or changed problem is still recorded at once
// (docs/DAEMON.md#tamper-watch-and-healing).
import type { VerifyProblem } from '../vault/types.js';

/** What to do with a failing verify: `record` a new or changed problem set; `retry` the heal of one already recorded; leave a `persisting` one. */
export type TamperStep = 'record' | 'retry' | 'persisting';

// What was found, not only where: a file changed again (another SHA-256, size or mode in the message) is a new problem.
const keyOf = (p: VerifyProblem): string => `${p.code}\u0000${p.path}\u0000${p.message}`;

/** A failing heal of the same problems is retried after 1, 2, 4 … checks, at most this many apart. */
const MAX_RETRY_SPACING = 64;

export class TamperMemory {
  /** The problems last recorded (code and path), or null while the vault verifies. */
  private known: Set<string> | null = null;
  /** A heal ran to its end and `known` was still there after it: healing again cannot repair it. */
  private unrepairable = false;
  /** Heals of `known` that failed, and checks since the last try: the next retry waits twice as long. */
  private failedHeals = 0;
  private checksSinceTry = 0;

  decide(problems: readonly VerifyProblem[]): TamperStep {
    const keys = new Set(problems.map(keyOf));
    const known = this.known;
    if (known !== null && known.size === keys.size && [...keys].every((k) => known.has(k))) {
      if (this.unrepairable) return 'persisting';
      this.checksSinceTry++;
      if (this.checksSinceTry < Math.min(2 ** this.failedHeals, MAX_RETRY_SPACING)) return 'persisting';
      this.checksSinceTry = 0;
      return 'retry';
    }
    this.known = keys;
    this.unrepairable = false;
    this.failedHeals = 0;
    this.checksSinceTry = 0;
    return 'record';
  }

  /** The heal of the problems just recorded or retried failed (a missing stored bundle, a full disk). */
  healFailed(): void {
    this.failedHeals++;
    this.checksSinceTry = 0;
  }

  /** After a heal that ran to its end, the problems still found: those not recorded before (to record now). */
  afterHeal(problems: readonly VerifyProblem[]): VerifyProblem[] {
    if (problems.length === 0) {
      this.clear();
      return [];
    }
    const known = this.known ?? new Set<string>();
    const fresh = problems.filter((p) => !known.has(keyOf(p)));
    this.known = new Set(problems.map(keyOf));
    this.unrepairable = true;
    return fresh;
  }

  /** The vault verified: the next problem is new. */
  clear(): void {
    this.known = null;
    this.unrepairable = false;
    this.failedHeals = 0;
    this.checksSinceTry = 0;
  }
}
