// Watches the audit log like the vault: a directory watch for a deleted or replaced file, and a periodic check of
// its inode identity and +a flag (chattr raises no inotify event). Each finding is a tamper event (docs/DAEMON.md#audit-log).
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { messageOf } from '../core/errors.js';
import type { AuditLog } from '../adapters/audit-log.js';
import type { Logger } from '../adapters/logger.js';
import type { AuditRecorder } from './audit-recorder.js';
import type { DaemonCounters } from './counters.js';

/** Quiet time after a directory event before the check (an editor's write-and-rename is one event burst). */
const DEBOUNCE_MS = 50;

// Why: a log deleted, replaced or made writable while the daemon runs would otherwise go unnoticed until a restart.
export class AuditGuard {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly audit: AuditLog,
    private readonly recorder: AuditRecorder,
    private readonly log: Logger,
    private readonly counters: DaemonCounters,
    private intervalMs: number,
  ) {}

  start(): void {
    this.watchDirectory();
    this.timer = setInterval(() => this.check(), this.intervalMs);
    this.timer.unref();
  }

  // Why: SIGHUP may change the flag-audit period, which this check follows.
  reconfigure(intervalMs: number): void {
    this.intervalMs = intervalMs;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  // Why: unlink, rename and create in the log's directory are seen at once; the watch is re-made if the directory went.
  private watchDirectory(): void {
    if (this.closed || this.watcher !== null) return;
    const name = basename(this.audit.path);
    try {
      this.watcher = watch(dirname(this.audit.path), { persistent: false }, (_event, file) => {
        if (file !== null && file !== name) return;
        if (this.debounce !== null) return;
        this.debounce = setTimeout(() => {
          this.debounce = null;
          this.check();
        }, DEBOUNCE_MS);
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (e) {
      this.log.warn({ event: 'watch-error', where: dirname(this.audit.path), err: messageOf(e) }, 'cannot watch the audit log directory; the periodic check remains');
    }
  }

  /** Runs one check now (at most one at a time; a request during a check runs one more after it). */
  check(): void {
    if (this.closed) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = this.checkOnce().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.check();
      }
    });
  }

  private async checkOnce(): Promise<void> {
    try {
      const found = await this.audit.inspect();
      if (found === null) return;
      this.counters.auditTampers++;
      this.log.error({ event: 'tamper', target: 'audit-log', where: this.audit.path, ...found }, `audit log ${found.problem}: ${found.action}`);
      this.recorder.record('tamper', { target: 'audit-log', where: this.audit.path, ...found });
    } catch (e) {
      this.log.error({ event: 'tamper', target: 'audit-log', where: this.audit.path, err: messageOf(e) }, 'audit log changed and could not be repaired');
    } finally {
      this.watchDirectory();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = null;
    await this.running;
  }
}
