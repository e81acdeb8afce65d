// Small helpers for bench/hash-bench.ts: run a peer tool and time it, medians, a plain-text table.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

// Runs a command to completion with stdout discarded; rejects with its stderr on a non-zero exit.
export function runQuiet(cmd: string, args: string[], opts: { cwd?: string; okCodes?: number[] } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if ((opts.okCodes ?? [0]).includes(code ?? -1)) resolve();
      else reject(new Error(`${cmd} exited with ${code}: ${stderr.trim().slice(0, 500)}`));
    });
  });
}

// Wall-clock seconds of one async run.
export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

// Median wall-clock seconds of `runs` runs (the first run is not discarded: the cache is warm).
export async function medianSeconds(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await seconds(fn));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

// Medians of several contenders run in turns (a, b, c, a, b, c, ...), so a burst of load on a
// shared machine hits all of them alike instead of skewing one.
export async function interleavedMedians(runs: number, fns: (() => Promise<unknown>)[]): Promise<number[]> {
  const times: number[][] = fns.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [k, fn] of fns.entries()) times[k]!.push(await seconds(fn));
  }
  return times.map((ts) => {
    ts.sort((a, b) => a - b);
    return ts[Math.floor(ts.length / 2)] ?? 0;
  });
}

// Splits a list into n interleaved parts (balanced for equal-sized files).
export function split<T>(items: T[], n: number): T[][] {
  const parts: T[][] = Array.from({ length: n }, () => []);
  items.forEach((x, i) => parts[i % n]!.push(x));
  return parts;
}

// The first `textColumns` columns left-aligned, numbers right-aligned.
export function formatTable(header: string[], rows: string[][], textColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < textColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

// One line naming the machine the figures came from.
export function machineLine(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(info)?.[1] ?? 'unknown CPU';
  const shaNi = /\bsha_ni\b/.test(info) ? 'SHA-NI' : 'no SHA-NI';
  const memGiB = Math.round(Number(/MemTotal:\s*(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024 / 1024);
  return `${cpus().length} cores, ${model} (${shaNi}), ${memGiB} GiB RAM, Node ${process.version}`;
}
