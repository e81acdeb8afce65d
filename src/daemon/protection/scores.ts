// OOM scores through /proc: the protected processes held at the configured score (or the lowest the
// host allows), expendable ones raised; every write read back, drift told from first placement.
import { isSentinelError, messageOf, type ErrorCode } from '../../core/errors.js';
import { readOomScoreAdj, writeOomScoreAdj } from '../../adapters/oom.js';
import type { ProcessEntry } from '../../adapters/proc.js';
import { compileExpendables, expendableItem, expendableRuleFor, fallbackScore, oomItem, scoreToWrite, type ScoringOutcome } from './policy.js';
import type { ProtectionSpec } from './spec.js';
import type { ExpendableProcess, ProtectedProcess, ProtectionAudit, ProtectionItem, ProtectionLog, ProtectionRepair } from './types.js';

function codeOf(e: unknown): ErrorCode {
  return isSentinelError(e) ? e.code : 'io';
}

// Why: remembers what it applied per PID, so a changed score is drift and a new process is a first placement.
export class OomScores {
  private readonly applied = new Map<number, number>();
  private readonly expendableApplied = new Map<number, number>();
  private lastRefusalLogged: string | null = null;

  constructor(
    private readonly spec: ProtectionSpec,
    private readonly log: ProtectionLog,
    private readonly audit: ProtectionAudit,
  ) {}

  // Why: every protected process gets the configured score; where -1000 is refused, the best the host allows (0).
  async protect(pids: readonly number[], table: ReadonlyMap<number, ProcessEntry>, processes: ProtectedProcess[], problems: string[]): Promise<{ repairs: ProtectionRepair[]; item: ProtectionItem; effective: number | null }> {
    const repairs: ProtectionRepair[] = [];
    const target = this.spec.oomScoreAdj;
    const fallback = fallbackScore(target);
    const outcome: ScoringOutcome = { target, refusal: null, unscored: [], atTarget: 0, atFallback: 0, protectedCount: pids.length };
    const byPid = new Map(processes.map((p) => [p.pid, p]));
    for (const pid of pids) {
      let current: number;
      try {
        current = await readOomScoreAdj(pid);
      } catch {
        continue;
      }
      let now = current;
      const wanted = scoreToWrite(current, target, outcome.refusal !== null);
      if (wanted !== null) {
        try {
          now = await writeOomScoreAdj(pid, wanted);
        } catch (e) {
          if (isSentinelError(e, 'not-found')) continue;
          if (isSentinelError(e, 'not-permitted') && wanted < 0) {
            outcome.refusal = { reason: messageOf(e), code: e.code };
            if (current > fallback) {
              try {
                now = await writeOomScoreAdj(pid, fallback);
              } catch (e2) {
                problems.push(messageOf(e2));
              }
            }
          } else {
            problems.push(messageOf(e));
            outcome.unscored.push({ reason: messageOf(e), code: codeOf(e) });
          }
        }
      }
      if (now !== current) repairs.push({ pid, what: 'oom_score_adj', from: String(current), to: String(now), kind: this.applied.has(pid) ? 'drift' : 'initial' });
      this.applied.set(pid, now);
      if (now === target) outcome.atTarget++;
      else if (now <= fallback) outcome.atFallback++;
      const entry = byPid.get(pid);
      if (entry !== undefined) entry.oomScoreAdj = now;
      else processes.push({ pid, comm: table.get(pid)?.comm ?? '?', oomScoreAdj: now, cgroup: null, inSlice: null });
    }
    for (const pid of this.applied.keys()) if (!table.has(pid)) this.applied.delete(pid);
    if (outcome.refusal !== null && this.lastRefusalLogged !== outcome.refusal.reason) {
      this.lastRefusalLogged = outcome.refusal.reason;
      this.log.warn({ code: outcome.refusal.code }, `protection: ${outcome.refusal.reason}`);
      this.audit('refused', 'oom_score_adj', outcome.refusal.reason);
    }
    return { repairs, ...oomItem(outcome) };
  }

  // Why: expendable processes (not protected ones) get their configured higher score, so they die first.
  async expendables(protectedSet: ReadonlySet<number>, table: ReadonlyMap<number, ProcessEntry>, problems: string[]): Promise<{ repairs: ProtectionRepair[]; item: ProtectionItem; found: ExpendableProcess[] }> {
    if (this.spec.expendable.length === 0) return { repairs: [], item: { state: 'off' }, found: [] };
    const rules = compileExpendables(this.spec.expendable);
    const repairs: ProtectionRepair[] = [];
    const found: ExpendableProcess[] = [];
    let failed = 0;
    for (const p of table.values()) {
      const rule = expendableRuleFor(p, rules, protectedSet, process.pid);
      if (rule === undefined) continue;
      try {
        const current = await readOomScoreAdj(p.pid);
        let now = current;
        if (current !== rule.score) {
          now = await writeOomScoreAdj(p.pid, rule.score);
          repairs.push({ pid: p.pid, what: 'expendable', from: String(current), to: String(now), kind: this.expendableApplied.has(p.pid) ? 'drift' : 'initial' });
        }
        this.expendableApplied.set(p.pid, now);
        found.push({ pid: p.pid, comm: p.comm, oomScoreAdj: now });
      } catch (e) {
        if (isSentinelError(e, 'not-found')) continue;
        failed++;
        problems.push(messageOf(e));
      }
    }
    for (const pid of this.expendableApplied.keys()) if (!table.has(pid)) this.expendableApplied.delete(pid);
    return { repairs, item: expendableItem(found, failed, problems), found };
  }
}
