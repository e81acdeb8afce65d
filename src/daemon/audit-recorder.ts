// Turns vault events and daemon findings into audit lines: consecutive seals of one operation become one line.
import type { AuditKind } from '../core/audit.js';
import type { AuditLog } from '../adapters/audit-log.js';
import type { Logger } from '../adapters/logger.js';
import type { VaultEvent } from '../vault/types.js';
import { messageOf } from '../core/errors.js';

// Why: the vault reports each sealed path; an audit line per file would make a 10,000-file deploy write 10,000 lines.
export class AuditRecorder {
  private pendingSeal: { count: number; first: string; last: string } | null = null;
  private writes: Promise<void> = Promise.resolve();
  /** Who asked for the running operation (socket, inbox, tamper watch); merged into its lines. */
  context: Record<string, unknown> = {};
  failures = 0;

  constructor(
    private readonly audit: AuditLog,
    private readonly log: Logger,
  ) {}

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
    const line = { ...this.context, ...fields };
    this.writes = this.audit.append(kind, line).catch((e: unknown) => {
      this.failures++;
      this.log.error({ event: 'audit-failed', kind, err: messageOf(e) }, 'audit log write failed');
    });
  }

  // Why: at the end of each operation: pending seals written, every line on disk.
  async flush(): Promise<void> {
    this.flushSeal();
    await this.writes;
  }
}
