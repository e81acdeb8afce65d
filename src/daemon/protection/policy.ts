// The pure side of protection: which processes are protected or expendable, which score each gets,
// when a memory setting holds, and what the report says (docs/PROTECTION.md). No I/O, no clock.
import type { ErrorCode } from '../../core/errors.js';
import type { ExpendableSpec } from './spec.js';
import type { ExpendableProcess, MemoryFile, ProtectionItem, ProtectionItems, ProtectionRepair } from './types.js';

/** A process as the policy sees it: its place in the tree, and what expendable rules match on. */
export interface ProcessFacts {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
}

// Why: protection covers the given roots and every descendant alive in the snapshot (workers started later).
export function descendantsOf(roots: readonly number[], table: ReadonlyMap<number, Pick<ProcessFacts, 'pid' | 'ppid'>>): number[] {
  const children = new Map<number, number[]>();
  for (const p of table.values()) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p.pid]);
    else list.push(p.pid);
  }
  const seen = new Set<number>();
  const queue = roots.filter((pid) => table.has(pid));
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return [...seen].sort((a, b) => a - b);
}

// Why: what is protected (docs/PROTECTION.md#what-is-protected): the targets' main PIDs, all their
// descendants, and whatever else sits in the slice, as long as it is alive in the snapshot.
export function protectedPids(roots: readonly number[], table: ReadonlyMap<number, Pick<ProcessFacts, 'pid' | 'ppid'>>, sliceMembers: readonly number[]): number[] {
  const set = new Set(descendantsOf(roots.filter((p) => Number.isInteger(p) && p > 0), table));
  for (const pid of sliceMembers) if (table.has(pid)) set.add(pid);
  return [...set].sort((a, b) => a - b);
}

/** The score protected processes are held at when the configured negative one is refused. */
export function fallbackScore(target: number): number {
  return Math.max(target, 0);
}

// Why: a protected process gets the configured score; once a negative one was refused, anything at or
// below the fallback is left alone and anything above it is put back down. Null: leave it as it is.
export function scoreToWrite(current: number, target: number, refused: boolean): number | null {
  if (current === target || (refused && current <= fallbackScore(target))) return null;
  return refused ? fallbackScore(target) : target;
}

/** The outcome of scoring the protected processes in one pass. */
export interface ScoringOutcome {
  target: number;
  /** The kernel's refusal of the negative score (no CAP_SYS_RESOURCE), if there was one. */
  refusal: { reason: string; code: ErrorCode } | null;
  /** Writes that failed for another reason. */
  unscored: { reason: string; code: ErrorCode }[];
  atTarget: number;
  atFallback: number;
  protectedCount: number;
}

// Why: the oom item never says "applied" unless every protected process holds the score, read back.
export function oomItem(o: ScoringOutcome): { item: ProtectionItem; effective: number | null } {
  const fallback = fallbackScore(o.target);
  const n = o.atTarget + o.atFallback;
  if (o.refusal !== null || o.atFallback > 0) {
    const cap = /CAP_SYS_RESOURCE/.test(o.refusal?.reason ?? '') || o.refusal === null ? 'no CAP_SYS_RESOURCE' : 'refused by the kernel';
    return {
      effective: fallback,
      item: {
        state: 'refused',
        short: `${cap}; kept at ${fallback}`,
        reason: `${o.refusal?.reason ?? `oom_score_adj=${o.target} was refused earlier`}; protected processes are kept at ${fallback} (the lowest this host allows), so only expendables with a higher score are killed first`,
        code: o.refusal?.code ?? 'not-permitted',
      },
    };
  }
  if (o.unscored.length > 0) {
    return {
      effective: null,
      item: {
        state: 'refused',
        short: `${o.unscored.length} process(es) not scored`,
        reason: `oom_score_adj=${o.target} on ${n} process(es); not on ${o.unscored.length}: ${o.unscored.map((u) => u.reason).join('; ')}`,
        code: o.unscored[0]?.code ?? 'io',
      },
    };
  }
  if (o.protectedCount === 0) return { effective: null, item: { state: 'pending', short: 'no protected process yet', reason: 'no target process is running' } };
  return { effective: o.target, item: { state: 'applied', reason: `oom_score_adj=${o.target} on ${n} process(es), read back` } };
}

/** Expendable rules with their regular expressions compiled once per pass. */
export interface ExpendableRule {
  comm: RegExp | null;
  cmdline: RegExp | null;
  score: number;
}

// Why: the rules' expressions are compiled once per pass, not once per process.
export function compileExpendables(rules: readonly ExpendableSpec[]): ExpendableRule[] {
  return rules.map((r) => ({ comm: r.comm === undefined ? null : new RegExp(r.comm), cmdline: r.cmdline === undefined ? null : new RegExp(r.cmdline), score: r.oomScoreAdj }));
}

// Why: an expendable is a process outside the protected trees (and not the sentinel) that a rule matches;
// both expressions must match when a rule gives both. A kernel thread (empty cmdline) never is.
export function expendableRuleFor(p: ProcessFacts, rules: readonly ExpendableRule[], protectedSet: ReadonlySet<number>, ownPid: number): ExpendableRule | undefined {
  if (protectedSet.has(p.pid) || p.pid === ownPid || p.cmdline === '') return undefined;
  return rules.find((r) => (r.comm === null || r.comm.test(p.comm)) && (r.cmdline === null || r.cmdline.test(p.cmdline)));
}

// Why: the expendable item is applied only when every match was scored.
export function expendableItem(found: readonly ExpendableProcess[], failed: number, problems: readonly string[]): ProtectionItem {
  return failed > 0
    ? { state: 'refused', short: `${failed} could not be scored`, reason: problems.join('; '), code: 'not-permitted' }
    : { state: 'applied', reason: `${found.length} expendable process(es) scored` };
}

// Why: the kernel keeps whole pages, so a value written is read back rounded down to the page size.
export function wholePages(bytes: number, pageSize: number): number {
  return Math.floor(bytes / pageSize) * pageSize;
}

// Why: a memory setting still holds when it reads back as written or as its whole pages.
export function memoryHolds(current: number, bytes: number, pageSize: number): boolean {
  return current === bytes || current === wholePages(bytes, pageSize);
}

// Why: protection is only as strong as the weakest ancestor, unless memory_recursiveprot is on.
export function effectivenessItem(file: MemoryFile, bytes: number, recursiveProt: boolean, blocking: readonly { rel: string; value: string }[]): ProtectionItem {
  if (recursiveProt) return { state: 'applied', reason: `${file}=${bytes} (memory_recursiveprot is on)` };
  const first = blocking[0];
  if (first === undefined) return { state: 'applied', reason: `${file}=${bytes}, every ancestor grants protection` };
  return {
    state: 'ineffective',
    short: `ancestor ${first.rel} has ${file}=${first.value}`,
    reason: `${file}=${bytes} is set on the slice but capped: ${blocking.map((b) => `${b.rel} has ${file}=${b.value}`).join(', ')} and memory_recursiveprot is off in the cgroup2 mount options`,
    code: 'unavailable',
  };
}

// Why: memory.low/min need the memory controller on cgroup v2; say why it is missing (v1 has it, or nobody).
export function memoryUnsupportedItem(v1Memory: string | undefined, v2Mount: string, parent: string): ProtectionItem {
  return {
    state: 'unsupported',
    short: 'no v2 memory controller',
    reason:
      v1Memory !== undefined
        ? `the memory controller is bound to cgroup v1 (${v1Memory}); cgroup v2 (${v2Mount}) has none, and v1 has no memory.low/memory.min`
        : `cgroup v2 (${v2Mount}) offers no memory controller to ${parent}`,
    code: 'unavailable',
  };
}

/** The log line of one repair, e.g. `protection: oom_score_adj of process 1234 drifted: 300 -> 0`. */
export function repairLine(r: ProtectionRepair): string {
  return `protection: ${r.what}${r.pid === undefined ? '' : ` of process ${r.pid}`} ${r.kind === 'drift' ? 'drifted' : 'set'}: ${r.from} -> ${r.to}`;
}

// Why: one line for systemd's STATUS=: what holds and what does not, and why (docs/PROTECTION.md#reading-the-status).
export function statusLine(items: ProtectionItems, oomScoreAdj: number): string {
  const part = (label: string, item: ProtectionItem): string | null => {
    if (item.state === 'off') return null;
    if (item.state === 'applied') return `${label} ok`;
    return `${label} ${item.state}${item.short !== undefined ? ` (${item.short})` : ''}`;
  };
  const parts = [part('slice', items.slice), part(`oom ${oomScoreAdj}`, items.oom), part('memory.low', items.memoryLow), part('memory.min', items.memoryMin), part('expendable', items.expendable)];
  return `protection: ${parts.filter((p): p is string => p !== null).join(', ')}`;
}
