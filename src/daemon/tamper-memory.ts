// What the guardian has already recorded of a tamper that is still there, so a problem the heal cannot repair
// (one outside the live release: a stray file in state/, a damaged state/highest.json) is recorded and healed
// once, not again every verify period, while a new or changed problem is still recorded at once
// (docs/DAEMON.md#tamper-watch-and-healing).
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { VerifyProblem } from '../vault/types.js';

/** What to do with a failing verify: `record` a new or changed problem set; `retry` the heal of one already recorded; leave a `persisting` one. */
export type TamperStep = 'record' | 'retry' | 'persisting';

/** A problem as the memory compares it: what was found and where, and the path's inode and change time. */
export interface SeenProblem {
  problem: VerifyProblem;
  /** `ino:ctime` of the path as lstat saw it after the verify (or the error's code): every write, chmod or chattr moves it. */
  seen: string;
}

// A report's wording alone does not tell a second change from the first (other bytes of the same wrong size, an
// extra file rewritten): the kernel's change time of the path does, and no one can set it back short of the clock.
const keyOf = ({ problem: p, seen }: SeenProblem): string => `${p.code}\u0000${p.path}\u0000${p.message}\u0000${seen}`;

/** How many problems of one report get their path looked at; the rest are compared on the report alone. */
const MAX_LOOKED_AT = 1024;

/** Looks at each problem's path under the vault (lstat, not followed) to tell one change from the next. */
export async function seenProblems(vaultPath: string, problems: readonly VerifyProblem[]): Promise<SeenProblem[]> {
  return Promise.all(
    problems.map(async (problem, i) => {
      if (i >= MAX_LOOKED_AT || problem.path === '') return { problem, seen: '' };
      const seen = await lstat(join(vaultPath, problem.path), { bigint: true }).then(
        (st) => `${String(st.ino)}:${String(st.ctimeNs)}`,
        (e: unknown) => (e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : 'error'),
      );
      return { problem, seen };
    }),
  );
}

/** A failing heal of the same problems is retried after 1, 2, 4 … checks, at most this many apart. */
const MAX_RETRY_SPACING = 64;

export class TamperMemory {
  /** The problems last recorded (their keys), or null while the vault verifies. */
  private known: Set<string> | null = null;
  /** A heal ran to its end and `known` was still there after it: healing again cannot repair it. */
  private unrepairable = false;
  /** Heals of `known` that failed, and checks since the last try: the next retry waits twice as long. */
  private failedHeals = 0;
  private checksSinceTry = 0;

  decide(problems: readonly SeenProblem[]): TamperStep {
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

  /**
   * After a heal that ran to its end, the problems still found: those not recorded before (to record now). Only a
   * set the heal left as it was is beyond its repair; anything new (a live file changed again while the heal ran)
   * is healed again, after the same growing spacing as a failed heal, so a heal that keeps changing what it cannot
   * repair does not record and heal every period.
   */
  afterHeal(problems: readonly SeenProblem[]): VerifyProblem[] {
    if (problems.length === 0) {
      this.clear();
      return [];
    }
    const known = this.known ?? new Set<string>();
    const fresh = problems.filter((p) => !known.has(keyOf(p)));
    this.known = new Set(problems.map(keyOf));
    if (fresh.length === 0) this.unrepairable = true;
    else this.healFailed();
    return fresh.map((p) => p.problem);
  }

  /** The vault verified: the next problem is new. */
  clear(): void {
    this.known = null;
    this.unrepairable = false;
    this.failedHeals = 0;
    this.checksSinceTry = 0;
  }
}
