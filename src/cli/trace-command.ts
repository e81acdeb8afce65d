// `sentinel trace --socket PATH [TARGET]`: a live view of each traced target's syscall-latency
// histogram (log2 microsecond buckets, as bpftrace's hist() prints them), its slow syscalls and the
// current stall time of its main thread, from the running daemon's eBPF engine (docs/EBPF.md#trace).
import type { DaemonReply } from './daemon-reply.js';
import { targetCommandFailure } from './exit-codes.js';
import type { TraceView } from '../core/trace-view.js';

export interface TraceFlags {
  socket: string;
  once?: boolean;
  json?: boolean;
  interval: number;
  timeout: number;
}

const BAR = 52;

// bpftrace's labels: [0], [1], [2, 4), [4, 8) … with K/M/G suffixes.
function size(n: number): string {
  for (const [unit, v] of [['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= v && n % v === 0) return `${n / v}${unit}`;
  return String(n);
}

export function bucketLabel(b: number): string {
  if (b === 0) return '[0]';
  if (b === 1) return '[1]';
  return `[${size(2 ** (b - 1))}, ${size(2 ** b)})`;
}

/** The histogram as bpftrace prints `hist()`: only the span from the first to the last non-empty bucket. */
export function renderHistogram(hist: readonly number[]): string[] {
  const first = hist.findIndex((n) => n > 0);
  if (first === -1) return ['(no syscalls counted yet)'];
  let last = hist.length - 1;
  while (hist[last] === 0) last--;
  const max = Math.max(...hist);
  const lines: string[] = [];
  for (let b = first; b <= last; b++) {
    const n = hist[b] ?? 0;
    const bar = '@'.repeat(Math.round((n / max) * BAR));
    lines.push(`${bucketLabel(b).padEnd(20)}${String(n).padStart(8)} |${bar.padEnd(BAR)}|`);
  }
  return lines;
}

function stallLine(v: TraceView): string {
  const s = v.stall;
  if (s === null) return 'stall: not watched (no "stall" configured)';
  const where = s.currentSyscall === null ? 'running (in no syscall)' : `in ${s.currentSyscall}`;
  const now = !s.armed ? 'not armed yet (its loop has not waited once since it was traced)' : s.inWait ? `waiting in ${s.currentSyscall ?? 'its wait syscall'} (idle, not a stall)` : `${s.stalled ? 'STALLED' : 'busy'} for ${s.busyMs.toFixed(1)} ms, ${where}`;
  const last = s.lastStallMs === null ? '' : `, last one ${s.lastStallMs.toFixed(1)} ms`;
  return `stall: ${now}; threshold ${s.thresholdMs} ms, action ${s.action}; ${s.stalls} stall(s)${last}; longest busy stretch ${s.maxBusyMs.toFixed(1)} ms`;
}

/** The text of one snapshot: per target, a header, the histogram, the slow syscalls and the stall line. */
export function renderTrace(views: readonly TraceView[]): string[] {
  const out: string[] = [];
  if (views.length === 0) return ['this daemon has no targets'];
  for (const v of views) {
    if (out.length > 0) out.push('');
    if (v.notTraced !== null) {
      out.push(`${v.target}  pid ${v.pid ?? '-'}  not traced: ${v.notTraced}`);
      continue;
    }
    out.push(`${v.target}  pid ${v.pid ?? '-'}  ${v.syscalls} syscalls  ${v.slowTotal} slow (>= ${v.slowMs ?? '?'} ms)${v.slowDropped > 0 ? `, ${v.slowDropped} more not reported (rate limit)` : ''}`);
    out.push('@usecs:', ...renderHistogram(v.histogram));
    if (v.slow.length > 0) {
      out.push(`slow syscalls (last ${v.slow.length}):`);
      for (const s of v.slow) out.push(`  ${s.syscall.padEnd(18)} ${s.durationMs.toFixed(1).padStart(10)} ms  tid ${s.tid}  ${(s.agoMs / 1000).toFixed(1)} s ago`);
    }
    out.push(stallLine(v));
  }
  return out;
}

async function snapshot(opts: TraceFlags, target: string | undefined): Promise<TraceView[]> {
  const { sendRequest } = await import('../adapters/control-client.js');
  const { daemonError } = await import('./daemon-reply.js');
  const reply = (await sendRequest(opts.socket, { op: 'trace', ...(target !== undefined ? { target } : {}) }, { timeoutMs: opts.timeout })) as DaemonReply<TraceView[]>;
  if (reply.ok !== true || !Array.isArray(reply.result)) throw daemonError(reply.error, opts.socket, 'malformed reply');
  return reply.result;
}

export async function runTrace(target: string | undefined, opts: TraceFlags): Promise<number> {
  try {
    if (opts.once === true || opts.json === true) {
      const views = await snapshot(opts, target);
      process.stdout.write(opts.json === true ? `${JSON.stringify({ ok: true, targets: views })}\n` : `${renderTrace(views).join('\n')}\n`);
      return 0;
    }
    const tty = process.stdout.isTTY;
    for (;;) {
      const views = await snapshot(opts, target);
      const text = `${renderTrace(views).join('\n')}\n`;
      process.stdout.write(tty ? `\x1b[H\x1b[2J${new Date().toISOString()}  (every ${opts.interval} ms; Ctrl-C ends)\n\n${text}` : `${text}\n`);
      await new Promise((r) => setTimeout(r, opts.interval));
    }
  } catch (e) {
    return targetCommandFailure(e);
  }
}
