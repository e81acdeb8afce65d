// The audit log file: hash-chained JSON lines, appended with O_APPEND, the file kept append-only (chattr +a).
// A record is one write of a whole line or nothing (docs/DAEMON.md#audit-log).
import { createHash } from 'node:crypto';
import { lstat, open, readFile, type FileHandle } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import { AUDIT_GENESIS, chainHash, formatAuditLine, verifyAuditChain, type AuditKind, type ChainStart, type ChainState } from '../core/audit.js';
import { ioError } from '../core/errno.js';
import { FS_APPEND_FL, cutFragment, moveAside, putBack, truncateAppendOnly, type AppendFlagSetter } from './audit-file.js';
import { AuditHeadWriter, readAuditHead, type AuditHead } from './audit-head.js';

export type { AppendFlagSetter } from './audit-file.js';

// Why: the chain's hash function, injected into the pure core.
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

// Why: `sentinel audit verify FILE...` — reads and checks the whole chain (continuing `start`, the chain of the file
// before it); throws audit-chain with the line number.
export async function verifyAuditFile(path: string, start?: ChainStart): Promise<ChainState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw ioError(cause, 'cannot read the audit log', path);
  }
  return verifyAuditChain(text, sha256Hex, path, start === undefined ? {} : { start });
}

export interface AuditOpenReport {
  lines: number;
  /** Set when the existing file's chain is broken; new lines still chain to the last line as written. */
  brokenAt?: { line: string; message: string };
  appendOnly: boolean;
  /** An incomplete last line (a crash or a full disk in the middle of an append) that was cut off at open. */
  trimmedFragment?: { bytes: number; sha256: string };
  /** The log was missing, or did not hold the last record written to it: a new chain continues that record. */
  continued?: { seq: number; hash: string; reason: string; movedAside: string | null };
}

/** What the guard found and did: the log deleted, replaced, or its +a lifted while the daemon ran. */
export interface AuditTamper {
  problem: 'append-only flag lifted' | 'deleted' | 'replaced';
  /** `+a set again`, `restored` (from the file the daemon holds open), or `new chain` (its content had changed too). */
  action: string;
  movedAside: string | null;
}

export interface AuditLogDeps {
  flags?: AppendFlagSetter;
  now: () => Date;
  /** Where the last written record (seq, hash) is kept between runs; without it a lost log goes unnoticed at start. */
  headFile?: string;
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

// Why: where the chain of the file's bytes ends (or where it breaks, and then its last line as written).
function chainOf(text: string, path: string): { prev: string; seq: number; lines: number; brokenAt?: { line: string; message: string } } {
  try {
    const state = verifyAuditChain(text, sha256Hex, path, { allowContinuation: true });
    return { prev: state.lastHash, seq: state.nextSeq, lines: state.lines };
  } catch (e) {
    if (!(e instanceof SentinelError)) throw e;
    return { ...headOfBroken(text), lines: text.split('\n').filter((l) => l !== '').length, brokenAt: { line: e.where ?? path, message: e.message } };
  }
}

// Why: a log that does not hold the last record the daemon wrote to it is not the daemon's log any more.
function holdsRecord(text: string, head: AuditHead): boolean {
  const marker = `{"seq":${String(head.seq)},`;
  for (const line of text.split('\n')) if (line.startsWith(marker) && chainHash(line, sha256Hex) === head.hash) return true;
  return false;
}

// Why: one writer per daemon; appends are serialised so the chain order is the file order.
export class AuditLog {
  private tail: Promise<void> = Promise.resolve();
  /** A fragment that could not be cut off: terminated by a newline before the next record (the break stays visible). */
  private unterminated: Buffer | null = null;
  /** A new chain's first record, written before the next one. */
  private pendingChain: { reason: string; movedAside: string | null } | null;
  private readonly head: AuditHeadWriter | null;

  private constructor(
    readonly path: string,
    private fh: FileHandle,
    private prev: string,
    private seq: number,
    private readonly deps: AuditLogDeps,
    pendingChain: { reason: string; movedAside: string | null } | null,
  ) {
    this.pendingChain = pendingChain;
    this.head = deps.headFile === undefined ? null : new AuditHeadWriter(deps.headFile);
  }

  // Why: opens (or creates) the log, cuts off an incomplete last line, re-derives the chain head from the bytes, sets +a;
  // a log lost or replaced since the last record the daemon wrote is replaced by a new chain that continues that record.
  static async open(path: string, deps: AuditLogDeps): Promise<{ log: AuditLog; report: AuditOpenReport }> {
    const known = deps.headFile === undefined ? null : await readAuditHead(deps.headFile, path);
    let bytes = Buffer.alloc(0);
    try {
      bytes = await readFile(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(cause, 'cannot read the audit log', path);
    }
    let movedAside: string | null = null;
    if (known !== null && bytes.length > 0 && !holdsRecord(bytes.toString('utf8'), known)) {
      movedAside = await moveAside(path, deps.flags, deps.now());
      bytes = Buffer.alloc(0);
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
      const chain = chainOf(bytes.toString('utf8'), path);
      report.lines = chain.lines;
      if (chain.brokenAt !== undefined) report.brokenAt = chain.brokenAt;
      let head = { prev: chain.prev, seq: chain.seq };
      let pendingChain: { reason: string; movedAside: string | null } | null = null;
      if (known !== null && chain.lines === 0) {
        const reason = movedAside !== null ? `the audit log did not hold the last record written to it (seq ${String(known.seq)})` : 'the audit log was missing';
        head = { prev: known.hash, seq: known.seq + 1 };
        pendingChain = { reason, movedAside };
        report.continued = { seq: known.seq, hash: known.hash, reason, movedAside };
      }
      if (deps.flags !== undefined) {
        const flags = await deps.flags.getFlags(path);
        if ((flags & FS_APPEND_FL) === 0) await deps.flags.setFlag(path, FS_APPEND_FL, true);
        report.appendOnly = ((await deps.flags.getFlags(path)) & FS_APPEND_FL) !== 0;
      }
      return { log: new AuditLog(path, fh, head.prev, head.seq, deps, pendingChain), report };
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** The sequence number the next record gets. */
  get nextSeq(): number {
    return this.seq;
  }

  // Why: one record per seal/unseal/deploy/reject/tamper/heal; resolves once the whole line is in the file and
  // flushed to disk. Rejects (io, naming the log) when it is not written — and then nothing of it is left behind — or
  // when its flush fails: then the line is in the file (the chain goes on from it) but may not be on disk, and the
  // caller writes the record again once the log flushes (docs/DAEMON.md#audit-log). `time` is when the event happened.
  append(kind: AuditKind, fields: Record<string, unknown> = {}, time?: Date): Promise<void> {
    return this.queue(async () => {
      await this.terminateFragment();
      const chain = this.pendingChain;
      if (chain !== null) {
        await this.writeLine('chain', { continues: { seq: this.seq - 1, hash: this.prev }, reason: chain.reason, movedAside: chain.movedAside }, this.deps.now());
        this.pendingChain = null;
      }
      const seq = this.seq;
      await this.writeLine(kind, fields, time ?? this.deps.now());
      await this.datasync(`audit record ${String(seq)} was written but not flushed to disk`);
    });
  }

  // Why: before records held for a failed flush are written again: a flush of what is already in the file. It proves
  // little (the kernel reports a writeback error once), but while it fails nothing more is added to the file.
  sync(): Promise<void> {
    return this.queue(() => this.datasync('the audit log cannot be flushed to disk'));
  }

  private async datasync(what: string): Promise<void> {
    try {
      await this.fh.datasync();
    } catch (cause) {
      throw ioError(cause, what, this.path);
    }
  }

  private queue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async writeLine(kind: AuditKind, fields: Record<string, unknown>, time: Date): Promise<void> {
    const line = formatAuditLine({ seq: this.seq, time, kind, prev: this.prev, fields });
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
    this.head?.update({ path: this.path, seq: this.seq, hash: this.prev, time: time.toISOString() });
    this.seq++;
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

  // Why: the log is watched like the vault (docs/DAEMON.md#audit-log): the path must name the inode the daemon
  // writes, and that inode must be +a. A lifted flag is set again; a deleted or replaced log is put back from the
  // inode still held open (the replacement kept aside); if its content changed too, a new chain continues ours.
  inspect(): Promise<AuditTamper | null> {
    return this.queue(async () => {
      const own = await this.fh.stat();
      const at = await lstat(this.path).catch(() => null);
      let problem: AuditTamper['problem'];
      if (at === null) problem = 'deleted';
      else if (!at.isFile() || at.ino !== own.ino || at.dev !== own.dev) problem = 'replaced';
      else if (this.deps.flags !== undefined && ((await this.deps.flags.getFlags(this.path)) & FS_APPEND_FL) === 0) problem = 'append-only flag lifted';
      else return null;
      return this.repair(problem);
    });
  }

  private async repair(problem: AuditTamper['problem']): Promise<AuditTamper> {
    const flags = this.deps.flags;
    const bytes = await readFile(`/proc/self/fd/${String(this.fh.fd)}`);
    const chain = chainOf(bytes.toString('utf8'), this.path);
    const intact = chain.prev === this.prev && chain.seq === this.seq && bytes.length > 0 && bytes[bytes.length - 1] === 0x0a;
    if (problem === 'append-only flag lifted' && intact) {
      await flags?.setFlag(this.path, FS_APPEND_FL, true);
      return { problem, action: '+a set again', movedAside: null };
    }
    const movedAside = await moveAside(this.path, flags, this.deps.now());
    if (intact) await putBack(this.path, bytes);
    const fh = await open(this.path, 'a', 0o600).catch((e: unknown) => {
      throw ioError(e, 'cannot open the audit log for appending', this.path);
    });
    await this.fh.close().catch(() => undefined);
    this.fh = fh;
    if (flags !== undefined) await flags.setFlag(this.path, FS_APPEND_FL, true);
    if (intact) return { problem, action: 'restored', movedAside };
    this.pendingChain = { reason: `the audit log was ${problem === 'deleted' ? 'deleted' : 'changed'} while the daemon ran and its content no longer ends with the last record written`, movedAside };
    return { problem, action: 'new chain', movedAside };
  }

  async close(): Promise<void> {
    await this.tail;
    await this.head?.flush();
    await this.fh.close();
  }
}
