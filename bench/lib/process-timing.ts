// Whole-process timing for bench/cli-bench.ts: wall time from spawn to the exit of the last process
// of a group (start-up, module loading and exit included), taken in turns with a peer.
import { spawn } from 'node:child_process';

/** One process to start: the program, its arguments and where it runs. */
export interface Proc {
  cmd: string;
  args: string[];
  cwd?: string;
}

/** What is timed in one run: processes started together (e.g. two openssl halves), with optional untimed set-up before and clean-up after. */
export interface Contender {
  name: string;
  /** The processes of run `run` (a function where each run needs its own input, e.g. the next bundle version). */
  procs: Proc[] | ((run: number) => Proc[]);
  /** Untimed, before each run (e.g. flush the filesystem, create a fresh target directory). */
  before?: (run: number) => void;
  /** Untimed, after each run. */
  after?: (run: number) => void;
}

/** Seconds of every counted run, and their min, median and max. */
export interface Timing {
  name: string;
  runs: number[];
  min: number;
  median: number;
  max: number;
}

function runOne(p: Proc): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(p.cmd, p.args, { cwd: p.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let exitAt = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    // 'exit' is the moment the process is reaped; 'close' (all output read) only settles the run.
    child.on('exit', () => (exitAt = performance.now()));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(exitAt);
      else reject(new Error(`${p.cmd} ${p.args.join(' ').slice(0, 200)} exited with ${code ?? signal}: ${stderr.trim().slice(0, 500)}`));
    });
  });
}

// Wall seconds of one run of a contender: from the first spawn to the last exit.
export async function timeGroup(c: Contender, run: number): Promise<number> {
  c.before?.(run);
  const procs = typeof c.procs === 'function' ? c.procs(run) : c.procs;
  const t0 = performance.now();
  const ends = await Promise.all(procs.map(runOne));
  const s = (Math.max(...ends) - t0) / 1000;
  c.after?.(run);
  return s;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function timingOf(name: string, runs: number[]): Timing {
  return { name, runs, min: Math.min(...runs), median: median(runs), max: Math.max(...runs) };
}

// Runs the contenders in turns (a, b, a, b, ...) after `warmup` uncounted rounds, so a burst of load
// on a shared machine hits every contender alike; returns one Timing per contender.
export async function inTurns(contenders: Contender[], runs: number, warmup = 1): Promise<Timing[]> {
  const times: number[][] = contenders.map(() => []);
  for (let i = 0; i < warmup + runs; i++) {
    for (const [k, c] of contenders.entries()) {
      const s = await timeGroup(c, i);
      if (i >= warmup) times[k]!.push(s);
    }
  }
  return contenders.map((c, k) => timingOf(c.name, times[k]!));
}

/** min, median and max of the per-round ratios a/b (each round's pair was run back to back). */
export function pairRatios(a: Timing, b: Timing): { min: number; median: number; max: number } {
  const r = a.runs.map((x, i) => x / b.runs[i]!);
  return { min: Math.min(...r), median: median(r), max: Math.max(...r) };
}
