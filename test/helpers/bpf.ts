// Shared pieces of the eBPF engine tests: the gate (root and a loadable engine), a record collector
// with bounded waits, and the asyncio loop fixture (test/fixtures/bpf/loop-target.py).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import type { BpfRecord } from '../../src/core/bpf-records.js';
import { bpfEngineUnavailable } from '../../src/adapters/bpf-engine.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { isRoot, needs } from './env.js';

/** True when the test must stop: not root, or the engine cannot load here (fails instead in CI). */
export function needsEngine(t: TestContext): boolean {
  if (needs(t, isRoot(), 'root (CAP_BPF, CAP_PERFMON)')) return true;
  const why = bpfEngineUnavailable();
  return needs(t, why === null, `the eBPF engine (${why ?? ''})`);
}

/** Debian's interpreter (the pyenv shim on PATH adds a shell and 100 ms). */
export function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Collects decoded records; `next` waits (bounded) for the first one matching from an index on. */
export class RecordLog {
  readonly records: BpfRecord[] = [];
  private waiters: { match: (r: BpfRecord) => boolean; from: number; resolve: (r: BpfRecord) => void }[] = [];

  readonly push = (r: BpfRecord): void => {
    this.records.push(r);
    const i = this.records.length - 1;
    for (const w of [...this.waiters]) {
      if (i < w.from || !w.match(r)) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(r);
    }
  };

  next<K extends BpfRecord['kind']>(kind: K, match: (r: Extract<BpfRecord, { kind: K }>) => boolean, timeoutMs: number, what: string, from = 0): Promise<Extract<BpfRecord, { kind: K }>> {
    const m = (r: BpfRecord): boolean => r.kind === kind && match(r as Extract<BpfRecord, { kind: K }>);
    const found = this.records.slice(from).find(m);
    if (found !== undefined) return Promise.resolve(found as Extract<BpfRecord, { kind: K }>);
    return new Promise((resolve, reject) => {
      const w = { match: m, from, resolve: (r: BpfRecord) => { clearTimeout(timer); resolve(r as Extract<BpfRecord, { kind: K }>); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}; records: ${JSON.stringify(this.records.slice(from).map((r) => ({ ...r, ns: String(r.ns) })), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 800)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

export interface LoopTarget {
  child: ChildProcess;
  pid: number;
  /** Resolves with the next line the fixture prints. */
  line(): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// Starts the asyncio fixture and waits for its loop to run.
export async function startLoopTarget(busySeconds: number): Promise<LoopTarget> {
  const child = spawn(python(), [join(packageRoot(), 'test', 'fixtures', 'bpf', 'loop-target.py'), String(busySeconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    const w = waiting.shift();
    if (w !== undefined) w(l);
    else lines.push(l);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const line = (): Promise<string> => {
    const l = lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((resolve) => waiting.push(resolve));
  };
  const first = await Promise.race([line(), exited.then((e) => `exited ${JSON.stringify(e)}`)]);
  if (first !== 'ready') throw new Error(`loop target did not start: ${first}`);
  return { child, pid: child.pid!, line, exited };
}

export function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
