// Parsing of the NDJSON that `bpftrace -f json` prints for the programs in bpf/.
// Pure: takes one line, returns a typed event or a reason; never throws on bad input.
import { decodeExitCode } from './bpf-records.js';

export { decodeExitCode };

/** The tracer attached its probes: detection is live from here on. */
export interface AttachedEvent {
  kind: 'attached';
  probes: number;
}

/**
 * The program's BEGIN probe ran: its output buffers are live. bpftrace 0.17 prints
 * attached_probes before it opens them, and an event in that gap is lost, so this is the
 * moment detection is really live.
 */
export interface ReadyEvent {
  kind: 'ready';
}

/** A whole process (thread group) exited: bpf/exit.bt, matched on `group_dead`. */
export interface ExitEvent {
  kind: 'exit';
  pid: number;
  ppid: number;
  /** The kernel's `task->exit_code`: wait status form (signal in the low 7 bits, status in bits 8-15). */
  rawCode: number;
  /** Exit status when the process exited normally, else null. */
  exitStatus: number | null;
  /** Signal number that killed the process, else null. */
  signal: number | null;
  coreDumped: boolean;
  comm: string;
  /** Kernel `nsecs` (CLOCK_MONOTONIC, the same clock as `process.hrtime.bigint()`). */
  ns: bigint;
}

/** One retransmitted skb on a watched local port: bpf/retransmit.bt. */
export interface RetransmitEvent {
  kind: 'retransmit';
  sport: number;
  dport: number;
  family: number;
  state: number;
  ns: bigint;
}

/** bpftrace dropped events (its perf ring buffer was full). */
export interface LostEvent {
  kind: 'lost';
  count: number;
}

/** Anything else bpftrace prints (map dumps at exit, time, join): valid but not acted on. */
export interface OtherEvent {
  kind: 'other';
  type: string;
}

export type TracerEvent = AttachedEvent | ReadyEvent | ExitEvent | RetransmitEvent | LostEvent | OtherEvent;

export type TracerLineResult = { ok: true; event: TracerEvent } | { ok: false; reason: string };

const EXIT_LINE = /^exit pid=(\d+) ppid=(\d+) code=(-?\d+) ns=(\d+) comm=(.*)$/;
const RETRANSMIT_LINE = /^retransmit sport=(\d+) dport=(\d+) family=(\d+) state=(\d+) ns=(\d+)$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Why: our own printf payloads are the only trusted shape; anything else is reported, not guessed.
export function parsePrintfPayload(data: string): TracerLineResult {
  const text = data.endsWith('\n') ? data.slice(0, -1) : data;
  if (text === 'ready') return { ok: true, event: { kind: 'ready' } };
  const exit = EXIT_LINE.exec(text);
  if (exit !== null) {
    const [, pid, ppid, code, ns, comm] = exit;
    const rawCode = Number(code);
    return {
      ok: true,
      event: { kind: 'exit', pid: Number(pid), ppid: Number(ppid), rawCode, ...decodeExitCode(rawCode), comm: comm ?? '', ns: BigInt(ns ?? '0') },
    };
  }
  const rt = RETRANSMIT_LINE.exec(text);
  if (rt !== null) {
    const [, sport, dport, family, state, ns] = rt;
    return {
      ok: true,
      event: { kind: 'retransmit', sport: Number(sport), dport: Number(dport), family: Number(family), state: Number(state), ns: BigInt(ns ?? '0') },
    };
  }
  return { ok: false, reason: `unknown printf payload: ${JSON.stringify(text.slice(0, 80))}` };
}

/**
 * Parse one line of `bpftrace -f json` output. Returns null for the blank lines bpftrace
 * interleaves, an event for a known line, or a reason for a line that cannot be used.
 */
export function parseTracerLine(line: string): TracerLineResult | null {
  const trimmed = line.trim();
  if (trimmed === '') return null;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { ok: false, reason: `not JSON: ${JSON.stringify(trimmed.slice(0, 80))}` };
  }
  if (!isRecord(value) || typeof value.type !== 'string') return { ok: false, reason: 'JSON line without a string "type"' };
  const data = value.data;
  switch (value.type) {
    case 'attached_probes': {
      const probes = isRecord(data) ? data.probes : undefined;
      if (typeof probes !== 'number') return { ok: false, reason: 'attached_probes without data.probes' };
      return { ok: true, event: { kind: 'attached', probes } };
    }
    case 'printf':
      if (typeof data !== 'string') return { ok: false, reason: 'printf without a string data' };
      return parsePrintfPayload(data);
    case 'lost_events': {
      const count = isRecord(data) ? data.events : undefined;
      return { ok: true, event: { kind: 'lost', count: typeof count === 'number' ? count : 0 } };
    }
    default:
      return { ok: true, event: { kind: 'other', type: value.type } };
  }
}
