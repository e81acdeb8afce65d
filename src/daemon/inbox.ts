// The inbox: a bundle file dropped in (scp, rsync, config management) is deployed, then moved to done/ or rejected/.
// Only a verdict on the bundle itself rejects it; back-pressure and transient failures leave it waiting
// (docs/DAEMON.md#inbox).
import { basename } from 'node:path';
import { watchInbox, type InboxWatch } from '../adapters/watcher.js';
import type { Logger } from '../adapters/logger.js';
import { SentinelError, exitCodeFor, messageOf, type ErrorCode } from '../core/errors.js';
import type { Sentinel } from './sentinel.js';
import { newCounters, type DaemonCounters } from './counters.js';
import { InboxDirs } from './inbox-dirs.js';

/** The longest wait between two attempts at a bundle that keeps meeting a transient failure. */
const MAX_RETRY_MS = 60_000;

// Why: `rejected/` is for what is wrong with the bundle (bad signature, rollback, malformed, the same release
// again); a full queue, a full disk or a daemon shutting down says nothing about the bundle.
export function isVerdict(code: ErrorCode): boolean {
  return exitCodeFor(code) === 1 || code === 'exists' || code === 'usage';
}

export interface InboxOptions {
  stableMs: number;
  /** First wait before a bundle that met a transient failure is tried again (doubling up to a minute). */
  retryMs: number;
  counters?: DaemonCounters;
}

interface Waiting {
  path: string;
  attempts: number;
  notBefore: number;
  last?: { code: ErrorCode; message: string };
}

// Why: writers write `name.tmp` (or a dot-file) and rename it to `*.bundle`; only complete files are picked up,
// one at a time in arrival order, so a burst waits in the directory instead of flooding the deploy queue.
export class Inbox {
  private watch: InboxWatch | null = null;
  private dirs: InboxDirs | null = null;
  private readonly waiting = new Map<string, Waiting>();
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly counters: DaemonCounters;
  processed = 0;

  constructor(
    private readonly dir: string,
    private readonly sentinel: Sentinel,
    private readonly log: Logger,
    private readonly opts: InboxOptions,
  ) {
    this.counters = opts.counters ?? newCounters();
  }

  /** Bundles seen and not yet deployed or rejected, and what the last transient failure was. */
  get state(): { waiting: number; deferred: number; last: { name: string; code: string; message: string } | null } {
    let last: { name: string; code: string; message: string } | null = null;
    let deferred = 0;
    for (const w of this.waiting.values()) {
      if (w.last === undefined) continue;
      deferred++;
      last = { name: basename(w.path), ...w.last };
    }
    return { waiting: this.waiting.size, deferred, last };
  }

  async start(): Promise<void> {
    // Opened and checked once; every move and reason afterwards goes through these descriptors.
    this.dirs = InboxDirs.openAt(this.dir);
    this.watch = watchInbox(this.dir, {
      stableMs: this.opts.stableMs,
      onBundle: (path) => {
        if (this.closed || this.waiting.has(path)) return;
        this.waiting.set(path, { path, attempts: 0, notBefore: 0 });
        this.kick();
      },
      onError: (err) => this.log.warn({ event: 'inbox-error', err: err.message }, 'inbox watch error'),
    });
    await this.watch.ready;
  }

  // Why: one bundle at a time, the next one due first (arrival order among those due).
  private kick(): void {
    if (this.running || this.closed) return;
    const now = Date.now();
    let next: Waiting | null = null;
    let soonest = Infinity;
    for (const w of this.waiting.values()) {
      if (w.notBefore <= now) {
        next = w;
        break;
      }
      soonest = Math.min(soonest, w.notBefore);
    }
    if (next === null) {
      if (soonest < Infinity) this.schedule(soonest - now);
      return;
    }
    this.running = true;
    void this.take(next).finally(() => {
      this.running = false;
      if (this.closed) this.releaseDirs();
      else this.kick();
    });
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, Math.max(0, ms));
  }

  private async take(w: Waiting): Promise<void> {
    const name = basename(w.path);
    const dirs = this.dirs;
    if (dirs === null || !dirs.has(name)) {
      this.waiting.delete(w.path);
      return;
    }
    try {
      // A symlink dropped as a bundle is refused by the deploy (bad-path), never followed.
      const result = await this.sentinel.deploy(w.path, 'inbox', { noFollow: true });
      this.waiting.delete(w.path);
      this.processed++;
      try {
        dirs.move(name, 'done');
      } catch (e) {
        this.log.error({ event: 'inbox', bundle: name, err: messageOf(e) }, 'cannot move a deployed inbox bundle to done/');
      }
      this.log.info({ event: 'inbox', bundle: name, outcome: 'done', version: result.version, releaseId: result.releaseId }, 'inbox bundle deployed');
    } catch (e) {
      const err = e instanceof SentinelError ? e : new SentinelError('internal', messageOf(e));
      if (!dirs.has(name)) {
        this.waiting.delete(w.path);
        return;
      }
      if (isVerdict(err.code)) {
        this.waiting.delete(w.path);
        this.processed++;
        this.reject(dirs, name, err);
        return;
      }
      w.attempts++;
      w.last = { code: err.code, message: err.message };
      const wait = Math.min(MAX_RETRY_MS, this.opts.retryMs * 2 ** Math.min(w.attempts - 1, 20));
      w.notBefore = Date.now() + wait;
      // To the back of the line: the other bundles get their turn first.
      this.waiting.delete(w.path);
      this.waiting.set(w.path, w);
      this.counters.inboxDeferred++;
      this.log.warn({ event: 'inbox', bundle: name, outcome: 'deferred', code: err.code, where: err.where, attempts: w.attempts, retryInMs: wait }, `${err.message}; left in the inbox, tried again later`);
    }
  }

  private reject(dirs: InboxDirs, name: string, err: SentinelError): void {
    try {
      const target = dirs.move(name, 'rejected');
      // The reason appears whole or not at all: readers never see a half-written file.
      dirs.writeReason(target, `${JSON.stringify({ code: err.code, message: err.message, where: err.where })}\n`);
    } catch (moveErr) {
      this.log.error({ event: 'inbox', bundle: name, err: messageOf(moveErr) }, 'cannot move a rejected inbox bundle or write its reason');
    }
    this.log.warn({ event: 'inbox', bundle: name, outcome: 'rejected', code: err.code }, err.message);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.watch?.close();
    this.watch = null;
    // A bundle being taken keeps the descriptors until it is moved (a closed fd's number could be reused).
    if (!this.running) this.releaseDirs();
  }

  private releaseDirs(): void {
    this.dirs?.close();
    this.dirs = null;
  }
}
