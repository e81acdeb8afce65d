// What a failure met on the machine, so a failure seen only in CI's output can be told apart from a
// slow or busy machine: the machine at the start, and for each failed test its duration, when its file
// ran, which other files ran beside it and the load average meanwhile. Used by test-file-times.mjs
// (one reporter: node warns about listeners beyond two).
import { availableParallelism, freemem, loadavg, release, totalmem } from 'node:os';
import { relative } from 'node:path';

/** @param {number} n */
const mib = (n) => `${String(Math.round(n / 1048576))} MiB`;
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

export class FailureContext {
  t0 = Date.now();
  /** @type {{ s: number, l: number }[]} the 1-minute load every 2 s */
  samples = [];
  /** @type {Map<string, { from: number, to: number | null }>} */
  files = new Map();
  /** @type {{ file: string, name: string, ms: number, nesting: number }[]} */
  failed = [];
  sampler = setInterval(() => this.samples.push({ s: this.at(), l: loadavg()[0] ?? 0 }), 2000);

  constructor() {
    this.sampler.unref();
  }

  at() {
    return (Date.now() - this.t0) / 1000;
  }

  header() {
    return `test run: node ${process.version}, kernel ${release()}, ${String(availableParallelism())} CPUs, memory ${mib(freemem())} free of ${mib(totalmem())}, load ${load()}, ${String(process.env.SENTINEL_TEST_CONCURRENCY ?? '2')} files at a time, CI=${process.env.CI ?? ''}\n`;
  }

  /**
   * The runner holds back a file's test events until that file is reported, but a file's start
   * (dequeue) and end (complete) arrive as they happen.
   * @param {{ type: string, data: { name?: string, file?: string, nesting?: number, details?: { duration_ms?: number } } }} event
   */
  see(event) {
    const { name, file, nesting, details } = event.data ?? {};
    if (typeof file !== 'string') return;
    const isFile = name === file && nesting === 0;
    if (event.type === 'test:dequeue' && isFile && !this.files.has(file)) this.files.set(file, { from: this.at(), to: null });
    else if (event.type === 'test:complete' && isFile) {
      const f = this.files.get(file);
      if (f !== undefined) f.to = this.at();
    } else if (event.type === 'test:fail' && typeof name === 'string') {
      this.failed.push({ file, name: isFile ? '(the file itself: it exited or crashed outside its tests)' : name, ms: details?.duration_ms ?? 0, nesting: isFile ? -1 : nesting ?? 0 });
    }
  }

  summary() {
    clearInterval(this.sampler);
    const end = this.at();
    // A file whose tests failed fails too; its own entry only says something when none of its tests did.
    const withTests = new Set(this.failed.filter((f) => f.nesting >= 0).map((f) => f.file));
    const failed = this.failed.filter((f) => f.nesting >= 0 || !withTests.has(f.file));
    if (failed.length === 0) return '';
    const lines = [`\nfailures in context (seconds since the run began; load = 1-minute load average, ${String(availableParallelism())} CPUs; load now ${load()}):\n`];
    for (const f of failed) {
      const span = this.files.get(f.file) ?? { from: 0, to: end };
      const to = span.to ?? end;
      const beside = [...this.files.entries()].filter(([other, s]) => other !== f.file && s.from < to && (s.to ?? end) > span.from).map(([other, s]) => `${relative(process.cwd(), other)} (+${s.from.toFixed(0)}-${(s.to ?? end).toFixed(0)} s)`);
      const during = this.samples.filter((x) => x.s >= span.from && x.s <= to).map((x) => x.l);
      const loadText = during.length === 0 ? 'not sampled' : `${Math.min(...during).toFixed(2)}-${Math.max(...during).toFixed(2)}`;
      lines.push(`✖ ${relative(process.cwd(), f.file)} › ${'  '.repeat(Math.max(0, f.nesting))}${f.name}: failed after ${(f.ms / 1000).toFixed(1)} s; its file ran +${span.from.toFixed(0)}-${to.toFixed(0)} s, load ${loadText}; beside it: ${beside.length === 0 ? 'nothing' : beside.join(', ')}\n`);
    }
    return lines.join('');
  }
}
