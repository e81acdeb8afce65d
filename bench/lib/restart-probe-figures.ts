// The restart benchmark's probe figures (--probe): per new process, what restart-probe.py recorded —
// its CPU to READY=1, the accept queue it met, how many connections it accepted and read before its
// first reply and how long that took — by peer, and per pair against the kill of the same round.
import type { KillRecord, ProbeMark } from './restart-steps.js';
import { sp, spread, type Spread } from './restart-pairs.js';

export interface ProbeFigures {
  /** The new process's CPU (the scheduler's) from its fork to READY=1, the user part of it (getrusage), and its run-queue wait, ms. */
  cpuToReadyMs: number;
  userToReadyMs: number;
  waitToReadyMs: number;
  /** The CPU of each step to READY=1, ms: fork → exec (systemd's set-up of the process), → the probe's first
   * line (the interpreter's start), → serve and uvicorn imported, → the app imported, → Uvicorn's startup, → READY=1. */
  cpuExecMs: number;
  cpuInterpMs: number;
  cpuImportMs: number;
  cpuAppMs: number;
  cpuConfigMs: number;
  cpuStartupMs: number;
  /** Connections in the accept queue at READY=1 and at the first reply. */
  queueAtReady: number;
  queueAtReply: number;
  /** Connections accepted, and request bytes read, before the first reply. */
  accepted: number;
  recvBytes: number;
  /** READY=1 → first reply bytes sent, ms; and the CPU spent in it. */
  readyToReplyMs: number;
  cpuReadyToReplyMs: number;
}

export function probeFigures(k: KillRecord): ProbeFigures | null {
  const p = k.probe;
  if (p?.ready === undefined || p.reply === undefined) return null;
  const cpu = (m: ProbeMark): number => m[4] / 1000;
  const step = (a: ProbeMark | undefined, b: ProbeMark | undefined): number => (a === undefined || b === undefined ? NaN : cpu(b) - cpu(a));
  return {
    cpuExecMs: p.exec === undefined ? NaN : cpu(p.exec),
    cpuInterpMs: p.exec === undefined ? NaN : cpu(p.probe) - cpu(p.exec),
    cpuImportMs: step(p.probe, p.imported),
    cpuAppMs: step(p.imported, p.app),
    cpuConfigMs: step(p.app, p.startup),
    cpuStartupMs: step(p.startup, p.ready),
    cpuToReadyMs: cpu(p.ready),
    userToReadyMs: p.ready[1] / 1000,
    waitToReadyMs: p.ready[5] / 1000,
    queueAtReady: p.ready[3],
    queueAtReply: p.reply[3],
    accepted: p.accepted ?? NaN,
    recvBytes: p.recvBytes ?? NaN,
    readyToReplyMs: (p.reply[0] - p.ready[0]) / 1000,
    cpuReadyToReplyMs: cpu(p.reply) - cpu(p.ready),
  };
}

const FIELDS: [keyof ProbeFigures, string][] = [
  ['cpuToReadyMs', 'CPU fork → READY=1, ms'],
  ['userToReadyMs', 'of it user, ms'],
  ['waitToReadyMs', 'run-queue wait to READY=1, ms'],
  ['cpuExecMs', 'CPU fork → exec, ms'],
  ['cpuInterpMs', 'exec → first line, ms'],
  ['cpuImportMs', 'imports, ms'],
  ['cpuAppMs', 'app import, ms'],
  ['cpuConfigMs', 'to startup, ms'],
  ['cpuStartupMs', 'startup, ms'],
  ['queueAtReady', 'queued at READY=1'],
  ['accepted', 'accepted before the first reply'],
  ['recvBytes', 'request bytes read before it'],
  ['readyToReplyMs', 'READY=1 → first reply, ms'],
  ['cpuReadyToReplyMs', 'CPU in it, ms'],
  ['queueAtReply', 'queued at the first reply'],
];

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');

/** Medians (min–max) per peer, and per pair the differences (c) − peer, of the probe's figures. */
export function probeTable(peers: { name: string; starts: readonly KillRecord[] }[], kills: readonly KillRecord[]): string {
  const lines = [
    'The new process, from the probe (medians, min–max):',
    '',
    `| peer | starts probed | ${FIELDS.map(([, h]) => h).join(' | ')} |`,
    `|---|---|${FIELDS.map(() => '---').join('|')}|`,
  ];
  for (const { name, starts } of peers) {
    const figs = starts.map(probeFigures).filter((x): x is ProbeFigures => x !== null);
    const cell = (key: keyof ProbeFigures): string => {
      const s = spread(figs.map((f) => f[key]));
      return `${f1(s.median)} (${f1(s.min)}–${f1(s.max)})`;
    };
    lines.push(`| (${name}) | ${String(figs.length)} of ${String(starts.length)} | ${FIELDS.map(([key]) => cell(key)).join(' | ')} |`);
  }
  for (const { name, starts } of peers) {
    if (name === 'c' || starts.length !== kills.length) continue;
    const diff = (key: keyof ProbeFigures): Spread => {
      const xs: number[] = [];
      kills.forEach((k, i) => {
        const a = probeFigures(k);
        const b = probeFigures(starts[i]!);
        if (a !== null && b !== null) xs.push(a[key] - b[key]);
      });
      return spread(xs);
    };
    lines.push('', `Per pair, (c) − (${name}), median (p25 to p75; min to max):`);
    for (const [key, h] of FIELDS) lines.push(`- ${h}: ${sp(diff(key))}`);
  }
  return lines.join('\n');
}
