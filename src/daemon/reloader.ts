// `systemctl reload` (ExecReload= runs `sentinel reload --socket`, which waits for this) and SIGHUP:
// re-read the configuration and the trust anchors; a rejected file keeps the running configuration
// and the rejection is the caller's error, STATUS= and `status` until a reload succeeds
// (docs/DAEMON.md#reload).
import { SentinelError, isSentinelError, messageOf, type ErrorCode } from '../core/errors.js';
import type { TrustPolicy } from '../core/trust.js';
import type { Logger } from '../adapters/logger.js';
import { markConfigRejected, type DaemonConfig } from './config.js';
import { changedKeys, LIVE_RELOAD_KEYS } from './config-reload.js';

/** The outcome of the last reload, for `status` and STATUS=. */
export interface ReloadOutcome {
  ok: boolean;
  at: string;
  /** Changed settings that take effect only after a restart. */
  ignored: string[];
  error: { code: ErrorCode; message: string; where: string | null } | null;
}

/** What a reload reads, and how the running daemon takes a new configuration. */
export interface ReloadDeps {
  read(): Promise<{ config: DaemonConfig; trust: TrustPolicy }>;
  current(): DaemonConfig;
  /** Applies the settings a reload may change (LIVE_RELOAD_KEYS); `ignored` are the others that changed. */
  apply(next: DaemonConfig, trust: TrustPolicy, ignored: string[]): Promise<void>;
  log: Logger;
  /** RELOADING=1 before applying, READY=1 after; STATUS= refreshed after a rejection. */
  notify: { reloading(done: boolean): Promise<void>; status(): Promise<void> };
  now?(): Date;
}

// Why: one reload at a time (a SIGHUP during a socket reload waits), and its verdict kept for STATUS=.
export class ConfigReloader {
  last: ReloadOutcome | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ReloadDeps) {}

  // Resolves with the outcome when the new configuration is in force; rejects (a config rejection) when it was refused.
  reload(): Promise<ReloadOutcome> {
    const run = this.chain.then(() => this.reloadNow());
    this.chain = run.catch(() => undefined);
    return run;
  }

  // The reason a reload was last refused, while it stands (for STATUS=), else null.
  rejection(): string | null {
    const e = this.last?.error;
    return e === null || e === undefined ? null : `${e.code}: ${e.message}${e.where !== null ? ` (${e.where})` : ''}`;
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    const at = (this.deps.now?.() ?? new Date()).toISOString();
    let next: { config: DaemonConfig; trust: TrustPolicy };
    try {
      next = await this.deps.read();
    } catch (e) {
      const err = isSentinelError(e) ? e : new SentinelError('internal', messageOf(e), { cause: e });
      this.last = { ok: false, at, ignored: [], error: { code: err.code, message: err.message, where: err.where ?? null } };
      this.deps.log.error({ event: 'reload', ok: false, code: err.code, where: err.where, err: err.message }, 'new configuration rejected; keeping the old one');
      await this.deps.notify.status();
      throw markConfigRejected(err);
    }
    await this.deps.notify.reloading(false);
    const ignored = changedKeys(this.deps.current(), next.config).filter((k) => !LIVE_RELOAD_KEYS.has(k));
    if (ignored.length > 0) this.deps.log.warn({ event: 'reload', ignored }, 'these settings take effect only after a restart');
    await this.deps.apply(next.config, next.trust, ignored);
    this.last = { ok: true, at, ignored, error: null };
    this.deps.log.info({ event: 'reload', ok: true }, 'configuration reloaded');
    await this.deps.notify.reloading(true);
    return this.last;
  }
}
