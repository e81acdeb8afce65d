// The audit log file: hash-chained JSON lines, appended with O_APPEND, the file kept append-only (chattr +a).
// A record is one write of a whole line or nothing (docs/DAEMON.md#audit-log).
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { AUDIT_GENESIS, chainHash, formatAuditLine, verifyAuditChain, type AuditKind, type ChainState } from '../core/audit.js';
import { ioError } from '../core/errno.js';
import { FS_APPEND_FL, cutFragment, truncateAppendOnly, type AppendFlagSetter } from './audit-file.js';

export type { AppendFlagSetter } from './audit-file.js';

// Why: the chain's hash function, injected into the pure core.
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

// Why: `sentinel audit verify FILE` — reads and checks the whole chain; throws audit-chain with the line number.
export async function verifyAuditFile(path: string): Promise<ChainState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw ioError(cause, 'cannot read the audit log', path);
  }
  return verifyAuditChain(text, sha256Hex, path);
}

export interface AuditOpenReport {
  lines: number;
  /** Set when the existing file's chain is broken; new lines still chain to the last line as written. */
  brokenAt?: { line: string; message: string };
  appendOnly: boolean;
  /** An incomplete last line (a crash or a full disk in the middle of an append) that was cut off at open. */
  trimmedFragment?: { bytes: number; sha256: string };
}

// Why: the chain head of a log whose chain is broken: new lines chain to its last line as written.
function headOfBroken(text: string): { prev: string; seq: number } {
  const lines = text.split('\n').filter((l) => l !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) return { prev: AUDIT_GENESIS, seq: 1 };
  let seq = lines.length + 1;
  try {
    const parsed = JSON.parse(last) as { seq?: unknown };
    if (typeof parsed.seq === 'number' && Number.isSafeInteger(parsed.seq) && parsed.seq > 0) seq = parsed.seq + 1;
  } catch {
    // not JSON: the line count is all there is
  }
  return { prev: chainHash(last, sha256Hex), seq };
}

// Why: one writer per daemon; appends are serialised so the chain order is the file order.
export class AuditLog {
  private tail: Promise<void> = Promise.resolve();
  /** A fragment that could not be cut off: terminated by a newline before the next record (the break stays visible). */
  private unterminated: Buffer | null = null;
  /** The last datasync failure (the line is in the file, its durability is not known), or null. */
  lastSyncError: string | null = null;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private prev: string,
    private seq: number,
    private readonly deps: { flags?: AppendFlagSetter; now: () => Date },
  ) {}

  // Why: opens (or creates) the log, cuts off an incomplete last line, re-derives the chain head from the bytes, sets +a.
  static async open(path: string, deps: { flags?: AppendFlagSetter; now: () => Date }): Promise<{ log: AuditLog; report: AuditOpenReport }> {
    let bytes = Buffer.alloc(0);
    try {
      bytes = await readFile(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(cause, 'cannot read the audit log', path);
    }
    let fh: FileHandle;
    try {
      fh = await open(path, 'a', 0o600);
    } catch (cause) {
      throw ioError(cause, 'cannot open the audit log for appending', path);
    }
    const report: AuditOpenReport = { lines: 0, appendOnly: false };
    try {
      const whole = bytes.lastIndexOf(0x0a) + 1;
      if (whole < bytes.length) {
        const fragment = bytes.subarray(whole);
        try {
          await truncateAppendOnly(fh, path, whole, deps.flags);
          report.trimmedFragment = { bytes: fragment.length, sha256: createHash('sha256').update(fragment).digest('hex') };
          bytes = bytes.subarray(0, whole);
        } catch {
          // Cannot cut it: end it with a newline, so what follows is whole lines and the break stays visible.
          await fh.write('\n');
          bytes = Buffer.concat([bytes, Buffer.from('\n')]);
        }
      }
      const text = bytes.toString('utf8');
      let head = { prev: AUDIT_GENESIS, seq: 1 };
      try {
        const state = verifyAuditChain(text, sha256Hex, path);
        head = { prev: state.lastHash, seq: state.nextSeq };
        report.lines = state.lines;
      } catch (e) {
        if (!(e instanceof SentinelError)) throw e;
        report.brokenAt = { line: e.where ?? path, message: e.message };
        report.lines = text.split('\n').filter((l) => l !== '').length;
        head = headOfBroken(text);
      }
      if (deps.flags !== undefined) {
        const flags = await deps.flags.getFlags(path);
        if ((flags & FS_APPEND_FL) === 0) await deps.flags.setFlag(path, FS_APPEND_FL, true);
        report.appendOnly = ((await deps.flags.getFlags(path)) & FS_APPEND_FL) !== 0;
      }
      return { log: new AuditLog(path, fh, head.prev, head.seq, deps), report };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** The sequence number the next record gets. */
  get nextSeq(): number {
    return this.seq;
  }

  /** The hash the next record's `prev` carries. */
  get head(): string {
    return this.prev;
  }

  // Why: one record per seal/unseal/deploy/reject/tamper/heal; resolves once the whole line is in the file, rejects
  // (io, naming the log) when it is not — and then nothing of it is left behind. `time` is when the event happened.
  append(kind: AuditKind, fields: Record<string, unknown> = {}, time?: Date): Promise<void> {
    const run = async (): Promise<void> => {
      await this.terminateFragment();
      const line = formatAuditLine({ seq: this.seq, time: time ?? this.deps.now(), kind, prev: this.prev, fields });
      const buf = Buffer.from(`${line}\n`, 'utf8');
      let written: number;
      try {
        written = (await this.fh.write(buf, 0, buf.length, null)).bytesWritten;
      } catch (cause) {
        throw ioError(cause, 'cannot append to the audit log', this.path);
      }
      if (written < buf.length) {
        try {
          await cutFragment(this.fh, this.path, written, this.deps.flags);
        } catch (cause) {
          this.unterminated = buf.subarray(0, written);
          throw ioError(cause, `audit record cut short after ${String(written)} of ${String(buf.length)} bytes, and the fragment could not be removed`, this.path);
        }
        throw new SentinelError('io', `audit log full: only ${String(written)} of ${String(buf.length)} bytes of a record fit; the fragment was removed`, { where: this.path });
      }
      this.prev = chainHash(line, sha256Hex);
      this.seq++;
      try {
        await this.fh.datasync();
        this.lastSyncError = null;
      } catch (e) {
        this.lastSyncError = e instanceof Error ? e.message : String(e);
      }
    };
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  // Why: the fallback when a fragment could not be cut off: a newline ends it, the next record chains to it as written.
  private async terminateFragment(): Promise<void> {
    const fragment = this.unterminated;
    if (fragment === null) return;
    let n: number;
    try {
      n = (await this.fh.write('\n')).bytesWritten;
    } catch (cause) {
      throw ioError(cause, 'cannot end the incomplete audit record', this.path);
    }
    if (n !== 1) throw new SentinelError('io', 'cannot end the incomplete audit record', { where: this.path });
    this.unterminated = null;
    this.prev = chainHash(fragment.toString('utf8'), sha256Hex);
  }

  async close(): Promise<void> {
    await this.tail;
    await this.fh.close();
  }
}
