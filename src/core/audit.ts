// The audit log's hash chain: each JSON line carries the SHA-256 of the previous line's exact bytes.
import { SentinelError } from './errors.js';

// Why: the chain anchor of the first line, so an emptied-then-refilled log is still a valid chain only from its start.
export const AUDIT_GENESIS = '0'.repeat(64);

// `gap`: the log could not be written for a while (what was held, what was lost); `chain`: the first line of a log that
// continues an earlier chain whose file is gone (docs/DAEMON.md#audit-log).
export const AUDIT_KINDS = ['start', 'stop', 'seal', 'unseal', 'deploy', 'deploy-tail', 'reject', 'tamper', 'heal', 'rollback', 'recover', 'reload', 'recovery', 'protection', 'gap', 'chain'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

export interface AuditRecord {
  seq: number;
  time: string;
  kind: AuditKind;
  prev: string;
  [field: string]: unknown;
}

// Why: SHA-256 is not in the language; the caller injects it: hex digest of the UTF-8 bytes of the text.
export type Sha256Hex = (utf8Text: string) => string;

// Why: one line of the log, fields in a fixed order (seq, time, kind, prev first) so lines are stable.
export function formatAuditLine(input: { seq: number; time: Date; kind: AuditKind; prev: string; fields?: Record<string, unknown> }): string {
  const record: Record<string, unknown> = { seq: input.seq, time: input.time.toISOString(), kind: input.kind, prev: input.prev };
  for (const [k, v] of Object.entries(input.fields ?? {})) {
    if (k in record) continue;
    record[k] = v;
  }
  return JSON.stringify(record);
}

// Why: the value the next line's `prev` must carry.
export function chainHash(line: string, sha256: Sha256Hex): string {
  return sha256(line);
}

export interface ChainState {
  lines: number;
  lastHash: string;
  nextSeq: number;
  /** Set when line 1 is a `chain` record continuing an earlier chain: the last seq and hash it names. */
  continues?: { seq: number; hash: string };
}

/** Where a chain picks up: after `seq - 1` records, the last of which hashes to `prev`. */
export interface ChainStart {
  seq: number;
  prev: string;
}

export interface VerifyChainOptions {
  /** The chain of an earlier file this one must continue (`audit verify OLD NEW`); default: a chain from seq 1. */
  start?: ChainStart;
  /** Accept a file whose line 1 is a `chain` record continuing a chain that is not in it (the daemon reading its own log). */
  allowContinuation?: boolean;
}

// Why: `audit verify` — checks every line parses, counts up from the start and names the previous line's hash;
// throws at the first break. A file that begins with a `chain` record continuing history it does not hold is a
// break at line 1 (the earlier records are lost) unless that history is given as `start`.
export function verifyAuditChain(text: string, sha256: Sha256Hex, where = 'audit log', options: VerifyChainOptions = {}): ChainState {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let prev = options.start?.prev ?? AUDIT_GENESIS;
  let expectedSeq = options.start?.seq ?? 1;
  let continues: ChainState['continues'];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const at = `${where}:${String(i + 1)}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new SentinelError('audit-chain', `line ${String(i + 1)} is not JSON`, { where: at, cause });
    }
    assertAuditRecord(value, at);
    if (i === 0 && value.kind === 'chain' && (value.seq !== expectedSeq || value.prev !== prev)) {
      const earlier = value.seq - 1;
      if (options.allowContinuation !== true) {
        throw new SentinelError('audit-chain', `line 1 continues an earlier chain after seq ${String(earlier)}: ${String(earlier)} earlier records are not in this file (history lost; give the earlier file first to check both)`, { where: at });
      }
      continues = { seq: earlier, hash: value.prev };
      expectedSeq = value.seq;
      prev = value.prev;
    }
    if (value.seq !== expectedSeq) throw new SentinelError('audit-chain', `line ${String(i + 1)} has seq ${String(value.seq)}, expected ${String(expectedSeq)}`, { where: at });
    if (value.prev !== prev) throw new SentinelError('audit-chain', `line ${String(i + 1)} does not chain to ${i === 0 ? 'the chain it continues' : `line ${String(i)}`} (prev hash differs)`, { where: at });
    prev = chainHash(line, sha256);
    expectedSeq++;
  }
  if (text.length > 0 && !text.endsWith('\n')) {
    throw new SentinelError('audit-chain', `line ${String(lines.length)} is incomplete (no final newline)`, { where: `${where}:${String(lines.length)}` });
  }
  return { lines: lines.length, lastHash: prev, nextSeq: expectedSeq, ...(continues !== undefined ? { continues } : {}) };
}

// Why: an audit line is untrusted input when read back; every bad field is named.
export function assertAuditRecord(value: unknown, where: string): asserts value is AuditRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SentinelError('audit-chain', 'record is not a JSON object', { where });
  const v = value as Record<string, unknown>;
  const bad: string[] = [];
  if (typeof v.seq !== 'number' || !Number.isSafeInteger(v.seq) || v.seq < 1) bad.push('seq');
  if (typeof v.time !== 'string' || Number.isNaN(Date.parse(v.time))) bad.push('time');
  if (typeof v.kind !== 'string' || !(AUDIT_KINDS as readonly string[]).includes(v.kind)) bad.push('kind');
  if (typeof v.prev !== 'string' || !/^[0-9a-f]{64}$/.test(v.prev)) bad.push('prev');
  if (bad.length > 0) throw new SentinelError('audit-chain', `bad field(s): ${bad.join(', ')}`, { where });
}
