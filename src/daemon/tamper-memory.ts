// What the guardian has already recorded of a tamper that is still there, so a problem the heal cannot repair
// (one outside the live release: a stray file in state/, a damaged state/highest.json) is recorded and healed
// once, not again every verify period, while a new or changed problem is still recorded at once
// (docs/DAEMON.md#tamper-watch-and-healing).
import type { VerifyProblem } from '../vault/types.js';

/** What to do with a failing verify: `record` a new or changed problem set; `retry` the heal of one already recorded; leave a `persisting` one. */
export type TamperStep = 'record' | 'retry' | 'persisting';

const keyOf = (p: VerifyProblem): string => `${p.code}\u0000${p.path}`;

export class TamperMemory {
  /** The problems last recorded (code and path), or null while the vault verifies. */
  private known: Set<string> | null = null;
  /** A heal ran to its end and `known` was still there after it: healing again cannot repair it. */
  private unrepairable = false;

  decide(problems: readonly VerifyProblem[]): TamperStep {
    const keys = new Set(problems.map(keyOf));
    const known = this.known;
    if (known !== null && known.size === keys.size && [...keys].every((k) => known.has(k))) return this.unrepairable ? 'persisting' : 'retry';
    this.known = keys;
    this.unrepairable = false;
    return 'record';
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
  }
}
