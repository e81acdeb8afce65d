// The paired run of the restart benchmark (scenario cd): each kill of the units as installed (c) and
// the cold start of the same units right after it (d), so the two share the VM's conditions of the
// moment. Per pair: the gap and its parts for both, and their differences (c) − (d); per kill the
// backend's own start as clients see it (exec → first good reply), so gap − own start is shown.
import type { LoadRecord } from './restart-load.js';
import type { KillRecord } from './restart-steps.js';
import { stats, type Stats } from './restart-analysis.js';

/** One kill or cold start, ms: kill (or `systemctl start`) → first good reply; → exec; exec → READY=1; exec → first good reply. */
export interface KillFigures {
  gapMs: number;
  toExecMs: number;
  execToReadyMs: number;
  ownStartMs: number;
}

export interface Spread extends Stats {
  p25: number;
  p75: number;
  /** The 95 % interval of the median: percentile bootstrap, 5,000 resamples (a fixed seed, so a run's figures repeat). */
  ciLow: number;
  ciHigh: number;
}

export interface PairFigures {
  /** The peer's name: d (cold start) or h (held start). */
  peer: string;
  pairs: { c: KillFigures; d: KillFigures }[];
  /** (c) − (d) per pair: the gap (X), kill → exec against start → exec, exec → READY=1, the own start. */
  gapDiff: Spread;
  toExecDiff: Spread;
  readyDiff: Spread;
  ownStartDiff: Spread;
}

function bootstrapMedian(s: readonly number[]): [number, number] {
  if (s.length === 0) return [NaN, NaN];
  let seed = 0x2545f491;
  const rand = (): number => {
    // xorshift32: reproducible resamples
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const medians: number[] = [];
  for (let r = 0; r < 5000; r++) medians.push(stats(Array.from(s, () => s[Math.floor(rand() * s.length)]!)).median);
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(0.025 * medians.length)]!, medians[Math.ceil(0.975 * medians.length) - 1]!];
}

export function spread(xs: number[]): Spread {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const at = (q: number): number => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!);
  const [ciLow, ciHigh] = bootstrapMedian(s);
  return { ...stats(s), p25: at(0.25), p75: at(0.75), ciLow, ciHigh };
}

/** The figures of one kill or cold start: null when the load saw no good reply of the new process. */
export function killFigures(k: KillRecord, records: readonly LoadRecord[]): KillFigures | null {
  let first: number | null = null;
  for (const r of records) if (r[2] === 'ok' && r[1] > k.killUs && r[3] !== k.pid && (first === null || r[1] < first)) first = r[1];
  if (first === null) return null;
  return { gapMs: (first - k.killUs) / 1000, toExecMs: (k.execUs - k.killUs) / 1000, execToReadyMs: (k.readyUs - k.execUs) / 1000, ownStartMs: (first - k.execUs) / 1000 };
}

// Why: the load is refused while a cold start's units are stopped, by design of that peer, and a held
// start's stop is a graceful one of its own; those failures are not the restart's. The records that
// ended between such a stop and the next kill are left out of the kills' figures.
export function outsideColdWindows(records: readonly LoadRecord[], kills: readonly KillRecord[], cold: readonly KillRecord[]): LoadRecord[] {
  const windows = cold.map((d) => [d.stopUs ?? d.killUs, kills.find((k) => k.killUs > d.killUs)?.killUs ?? Infinity] as const);
  return records.filter((r) => !windows.some(([from, to]) => r[1] >= from && r[1] < to));
}

export function analysePairs(peer: string, kills: readonly KillRecord[], cold: readonly KillRecord[], records: readonly LoadRecord[]): PairFigures {
  const pairs: { c: KillFigures; d: KillFigures }[] = [];
  for (let i = 0; i < Math.min(kills.length, cold.length); i++) {
    const c = killFigures(kills[i]!, records);
    const d = killFigures(cold[i]!, records);
    if (c !== null && d !== null) pairs.push({ c, d });
  }
  const diff = (f: (x: KillFigures) => number): Spread => spread(pairs.map((p) => f(p.c) - f(p.d)));
  return { peer, pairs, gapDiff: diff((x) => x.gapMs), toExecDiff: diff((x) => x.toExecMs), readyDiff: diff((x) => x.execToReadyMs), ownStartDiff: diff((x) => x.ownStartMs) };
}

const f1 = (x: number): string => x.toFixed(1);
export const sp = (s: Spread): string => `${f1(s.median)} (${f1(s.p25)} to ${f1(s.p75)}; ${f1(s.min)} to ${f1(s.max)}); 95 % interval of the median ${f1(s.ciLow)} to ${f1(s.ciHigh)}`;

const PEERS: Record<string, string> = { d: 'a cold start of them (d): socket and service stopped, then both started', h: 'a held start (h): the service alone stopped, the socket holding port 8000 starts it again at once (connections wait); its gap and start → exec count from its start job, so X against it counts the whole restart path' };

export function pairTable(p: PairFigures): string {
  const x = p.peer;
  const lines = [
    `Paired (c)/(${x}): ${String(p.pairs.length)} pairs, a kill of the units as installed (c) and ${PEERS[x] ?? x}; ms. "own start": exec → first good reply; "gap − own start": kill (or start) → exec.`,
    '',
    `| pair | gap (c) | gap (${x}) | X = (c) − (${x}) | kill → exec (c) | start → exec (${x}) | (c) − (${x}) | exec → READY=1 (c) | (${x}) | (c) − (${x}) | own start (c) | own start (${x}) | (c) − (${x}) |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  p.pairs.forEach(({ c, d }, i) => {
    lines.push(`| ${String(i + 1)} | ${f1(c.gapMs)} | ${f1(d.gapMs)} | ${f1(c.gapMs - d.gapMs)} | ${f1(c.toExecMs)} | ${f1(d.toExecMs)} | ${f1(c.toExecMs - d.toExecMs)} | ${f1(c.execToReadyMs)} | ${f1(d.execToReadyMs)} | ${f1(c.execToReadyMs - d.execToReadyMs)} | ${f1(c.ownStartMs)} | ${f1(d.ownStartMs)} | ${f1(c.ownStartMs - d.ownStartMs)} |`);
  });
  const col = (f: (y: { c: KillFigures; d: KillFigures }) => number): string => f1(stats(p.pairs.map(f)).median);
  lines.push(`| median | ${col((y) => y.c.gapMs)} | ${col((y) => y.d.gapMs)} | **${f1(p.gapDiff.median)}** | ${col((y) => y.c.toExecMs)} | ${col((y) => y.d.toExecMs)} | **${f1(p.toExecDiff.median)}** | ${col((y) => y.c.execToReadyMs)} | ${col((y) => y.d.execToReadyMs)} | **${f1(p.readyDiff.median)}** | ${col((y) => y.c.ownStartMs)} | ${col((y) => y.d.ownStartMs)} | **${f1(p.ownStartDiff.median)}** |`);
  lines.push(
    '',
    `Differences (c) − (${x}) per pair, median (p25 to p75; min to max), ms:`,
    `- gap, X: ${sp(p.gapDiff)}`,
    `- kill → exec against start → exec: ${sp(p.toExecDiff)}`,
    `- exec → READY=1: ${sp(p.readyDiff)}`,
    `- own start (exec → first good reply): ${sp(p.ownStartDiff)}`,
  );
  return lines.join('\n');
}

/** Per kill of a scenario: gap = (gap − own start) + own start, ms, in kill order. */
export function perKillLine(name: string, kills: readonly KillRecord[], records: readonly LoadRecord[]): string {
  const each = kills.map((k) => killFigures(k, records)).map((x) => (x === null ? '—' : `${f1(x.gapMs)} = ${f1(x.gapMs - x.ownStartMs)} + ${f1(x.ownStartMs)}`));
  return `(${name}) per kill, gap = gap − own start + own start (exec → first good reply), ms: ${each.join('; ')}`;
}
