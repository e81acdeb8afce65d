// Turns vault events and daemon findings into audit lines: consecutive seals of one operation become one line.
// While the log cannot be written, records are held (bounded) and written late, after a `gap` record saying so
// (docs/DAEMON.md#audit-log).
import { SentinelError, messageOf } from '../core/errors.js';
import type { AuditKind } from '../core/audit.js';
import type { AuditLog } from '../adapters/audit-log.js';
import type { Logger } from '../adapters/logger.js';
import type { VaultEvent } from '../vault/types.js';
import { newCounters, type DaemonCounters } from './counters.js';

interface HeldRecord {
  kind: AuditKind;
  fields: Record<string, unknown>;
  time: Date;
}

interface Outage {
  since: Date;
  error: string;
  /** Records dropped since the outage began (for `status`). */
  dropped: number;
  /** Records dropped that no `gap` record in the log counts yet, by kind. */
  unreported: number;
  unreportedKinds: Record<string, number>;
  gapWritten: boolean;
}

export interface AuditRecorderOptions {
  /** How often a held backlog is retried while the log cannot be written. */
  retryMs: number;
  /** Records held in memory at most; beyond that they are dropped and counted in the `gap` record. */
  maxHeldRecords: number;
  now?: () => Date;
  counters?: DaemonCounters;
}

/** What `status` and the health check say about the audit log. */
export interface AuditWriteState {
  writable: boolean;
  failingSince: string | null;
  error: string | null;
  held: number;
  dropped: number;
}

// Why: the vault reports each sealed path; an audit line per file would make a 10,000-file deploy write 10,000 lines.
export class AuditRecorder {
  private pendingSeal: { count: number; first: string; last: string } | null = null;
  private writes: Promise<void> = Promise.resolve();
  private readonly backlog: HeldRecord[] = [];
  private outage: Outage | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly now: () => Date;
  private readonly counters: DaemonCounters;
  /** Who asked for the running operation (socket, inbox, tamper watch); merged into its lines. */
  context: Record<string, unknown> = {};
  /** `reject` events the vault reported, so the daemon audits only the refusals the vault did not. */
  vaultRejects = 0;

  constructor(
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly opts: AuditRecorderOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
    this.counters = opts.counters ?? newCounters();
  }

  /** True while records are held because the log cannot be written. */
  get failing(): boolean {
    return this.outage !== null;
  }

  get state(): AuditWriteState {
    const o = this.outage;
    return { writable: o === null, failingSince: o?.since.toISOString() ?? null, error: o?.error ?? null, held: this.backlog.length, dropped: o?.dropped ?? 0 };
  }

  // Why: wired as VaultDeps.onEvent; synchronous, the write is queued.
  vaultEvent(e: VaultEvent): void {
    if (e.kind === 'seal') {
      const n = e.count ?? 1;
      const path = e.path ?? '';
      if (this.pendingSeal === null) this.pendingSeal = { count: n, first: path, last: path };
      else {
        this.pendingSeal.count += n;
        this.pendingSeal.last = path;
      }
      return;
    }
    this.flushSeal();
    if (e.kind === 'reject') this.vaultRejects++;
    const { kind, at: _at, ...fields } = e;
    this.write(kind, fields);
  }

  // Why: daemon-side findings (tamper, start, stop, reload, a reject the vault never saw).
  record(kind: AuditKind, fields: Record<string, unknown>): void {
    this.flushSeal();
    this.write(kind, fields);
  }

  private flushSeal(): void {
    const s = this.pendingSeal;
    if (s === null) return;
    this.pendingSeal = null;
    this.write('seal', s.count === 1 ? { path: s.first } : { count: s.count, first: s.first, last: s.last });
  }

  private write(kind: AuditKind, fields: Record<string, unknown>): void {
    const rec: HeldRecord = { kind, fields: { ...this.context, ...fields }, time: this.now() };
    this.writes = this.writes.then(() => this.writeOne(rec));
  }

  // Why: records keep their order: while a backlog is held, a new record joins it and the whole backlog is retried.
  private async writeOne(rec: HeldRecord): Promise<void> {
    if (this.outage !== null) {
      this.hold(rec);
      await this.drain();
      return;
    }
    try {
      await this.audit.append(rec.kind, rec.fields, rec.time);
    } catch (e) {
      this.failed(e, rec.kind);
      this.hold(rec);
    }
  }

  private hold(rec: HeldRecord): void {
    const o = this.outage;
    if (o === null) return;
    if (this.backlog.length < this.opts.maxHeldRecords) {
      this.backlog.push(rec);
      return;
    }
    o.dropped++;
    o.unreported++;
    o.unreportedKinds[rec.kind] = (o.unreportedKinds[rec.kind] ?? 0) + 1;
    this.counters.auditRecordsDropped++;
  }

  private failed(e: unknown, kind: AuditKind): void {
    const error = messageOf(e);
    this.counters.auditWriteFailures++;
    if (this.outage === null) {
      this.outage = { since: this.now(), error, dropped: 0, unreported: 0, unreportedKinds: {}, gapWritten: false };
      this.log.error({ event: 'audit-failed', kind, err: error, where: this.audit.path }, 'audit log write failed; holding records until it can be written');
      this.retryTimer = setInterval(() => {
        this.writes = this.writes.then(() => this.drain().then(() => undefined));
      }, this.opts.retryMs);
      this.retryTimer.unref();
    } else this.outage.error = error;
  }

  // Why: once the log takes writes again, a `gap` record says since when it did not, how many records follow late
  // (with the time they happened) and how many were dropped; then the held records, in order. Records dropped
  // after a gap record went in (the log failed again before the held records did) get a gap record of their own.
  private async drain(): Promise<boolean> {
    const o = this.outage;
    if (o === null) return true;
    try {
      // A failed flush leaves its record in the file: while the log still cannot be flushed, nothing more is added.
      await this.audit.sync();
      if (!o.gapWritten || o.unreported > 0) {
        await this.audit.append('gap', { since: o.since.toISOString(), error: o.error, held: this.backlog.length, dropped: o.unreported, droppedKinds: o.unreportedKinds });
        o.gapWritten = true;
        o.unreported = 0;
        o.unreportedKinds = {};
      }
      while (this.backlog.length > 0) {
        const rec = this.backlog[0];
        if (rec === undefined) break;
        await this.audit.append(rec.kind, rec.fields, rec.time);
        this.backlog.shift();
      }
    } catch (e) {
      this.failed(e, this.backlog[0]?.kind ?? 'gap');
      return false;
    }
    if (this.retryTimer !== null) clearInterval(this.retryTimer);
    this.retryTimer = null;
    this.outage = null;
    this.log.info({ event: 'audit-resumed', since: o.since.toISOString(), dropped: o.dropped }, 'audit log writable again; held records written');
    return true;
  }

  // Why: at the end of each operation: pending seals written (or held), in order.
  async flush(): Promise<void> {
    this.flushSeal();
    await this.writes;
  }

  // Why: a deploy goes live only after the records leading up to it are in the log (docs/DAEMON.md#audit-log):
  // everything pending is written, a held backlog is retried once, and if the log still cannot be written the
  // commit is refused with `io` naming the log.
  async ensureWritable(): Promise<void> {
    this.flushSeal();
    this.writes = this.writes.then(() => this.drain().then(() => undefined));
    await this.writes;
    const o = this.outage;
    if (o !== null) throw new SentinelError('io', `the audit log cannot be written (${o.error}); not committed, the vault is unchanged`, { where: this.audit.path });
  }

  // Why: daemon stop: the retry timer must not keep running after the log is closed.
  async close(): Promise<void> {
    await this.flush();
    if (this.retryTimer !== null) clearInterval(this.retryTimer);
    this.retryTimer = null;
  }
}
