// The audit log file: hash-chained JSON lines, appended with O_APPEND, the file kept append-only (chattr +a).
import { createHash } from 'node:crypto';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { AUDIT_GENESIS, chainHash, formatAuditLine, verifyAuditChain, type AuditKind, type ChainState } from '../core/audit.js';

const FS_APPEND_FL = 0x20;

// Why: the chattr part the audit log needs; the flags adapter's FlagStore satisfies it.
export interface AppendFlagSetter {
  getFlags(path: string): Promise<number>;
  setFlag(path: string, flag: number, on: boolean): Promise<void>;
}

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
}

// Why: one writer per daemon; appends are serialised so the chain order is the file order.
export class AuditLog {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private prev: string,
    private seq: number,
    private readonly now: () => Date,
  ) {}

  private tail: Promise<void> = Promise.resolve();

  // Why: opens (or creates) the log, re-derives the chain head from the file's bytes, and sets +a.
  static async open(path: string, deps: { flags?: AppendFlagSetter; now: () => Date }): Promise<{ log: AuditLog; report: AuditOpenReport }> {
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw new SentinelError('io', 'cannot read the audit log', { where: path, cause });
    }
    const report: AuditOpenReport = { lines: 0, appendOnly: false };
    let prev = AUDIT_GENESIS;
    let seq = 1;
    try {
      const state = verifyAuditChain(text, sha256Hex, path);
      prev = state.lastHash;
      seq = state.nextSeq;
      report.lines = state.lines;
    } catch (e) {
      if (!(e instanceof SentinelError)) throw e;
      report.brokenAt = { line: e.where ?? path, message: e.message };
      const lines = text.split('\n').filter((l) => l !== '');
      const last = lines[lines.length - 1];
      report.lines = lines.length;
      seq = lines.length + 1;
      if (last !== undefined) prev = chainHash(last, sha256Hex);
    }
    let fh: FileHandle;
    try {
      fh = await open(path, 'a', 0o600);
    } catch (cause) {
      throw ioError(cause, 'cannot open the audit log for appending', path);
    }
    if (text.length > 0 && !text.endsWith('\n')) {
      await fh.write('\n');
      seq = text.split('\n').filter((l) => l !== '').length + 1;
    }
    if (deps.flags !== undefined) {
      const flags = await deps.flags.getFlags(path);
      if ((flags & FS_APPEND_FL) === 0) await deps.flags.setFlag(path, FS_APPEND_FL, true);
      report.appendOnly = ((await deps.flags.getFlags(path)) & FS_APPEND_FL) !== 0;
    }
    return { log: new AuditLog(path, fh, prev, seq, deps.now), report };
  }

  // Why: one record per seal/unseal/deploy/reject/tamper/heal; resolves once the line is on disk.
  append(kind: AuditKind, fields: Record<string, unknown> = {}): Promise<void> {
    const run = async (): Promise<void> => {
      const line = formatAuditLine({ seq: this.seq, time: this.now(), kind, prev: this.prev, fields });
      await this.fh.write(`${line}\n`);
      await this.fh.datasync();
      this.prev = chainHash(line, sha256Hex);
      this.seq++;
    };
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.fh.close();
  }
}
