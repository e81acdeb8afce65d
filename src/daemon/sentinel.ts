// The vault guardian: one serialised queue for deploys, heals and verifies; tamper checks; counters for STATUS=.
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SentinelError, isSentinelError, messageOf } from '../core/errors.js';
import type { TrustPolicy } from '../core/trust.js';
import type { FlagStore } from '../adapters/flags.js';
import { FlagAudit } from './flag-audit.js';
import type { AuditRecorder } from './audit-recorder.js';
import type { Logger } from '../adapters/logger.js';
import type { DeployResult, Vault, VaultStatus, VerifyReport } from '../vault/types.js';
import { countReject, newCounters, type DaemonCounters } from './counters.js';
import { deployJob, type AuditedResult, type DeployJobHost, type DeployTailOutcome } from './deploy-job.js';
import { TamperMemory, seenProblems } from './tamper-memory.js';

export type TamperPolicy = 'heal' | 'alert';

export interface SentinelDeps {
  vault: Vault;
  audit: AuditRecorder;
  log: Logger;
  flags: FlagStore;
  onTamper: TamperPolicy;
  maxQueuedDeploys: number;
  /** Trust anchors from the configuration (outside the vault, docs/VAULT.md#invariants 6). */
  trust?: () => TrustPolicy;
  /** The daemon's counters (one object for status and metrics); a fresh set when not given. */
  counters?: DaemonCounters;
}

export type { AuditedResult } from './deploy-job.js';

export interface TamperOutcome {
  tampered: boolean;
  healed: boolean;
  problems: { code: string; path: string }[];
  /** Set when a heal was attempted and failed. */
  healError?: string;
}

function summariseProblems(report: VerifyReport): { code: string; path: string }[] {
  return report.problems.slice(0, 20).map((p) => ({ code: p.code, path: p.path }));
}

// Why: deploys, heals and verifies never overlap (a storm of submissions is serialised, none lost).
export class Sentinel {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private stopping = false;
  private running: string | null = null;
  private checkPending = false;
  readonly counters: DaemonCounters;
  /** `empty`: a vault fresh from `vault init` (no release ever deployed, highest version 0): healthy, waiting for the first deploy. */
  lastVerify: { atMs: number; ok: boolean; version: number | null; releaseId: string | null; empty?: boolean } | null = null;
  lastError: string | null = null;
  /** How the last deploy's tail ended (highest.json, pruning after the reply); null before the first. */
  lastDeployTail: DeployTailOutcome | null = null;
  private onChange: (() => void)[] = [];
  private onHeal: ((ms: number) => void)[] = [];
  private readonly flagAudit: FlagAudit;
  private readonly memory = new TamperMemory();

  constructor(private readonly deps: SentinelDeps) {
    this.counters = deps.counters ?? newCounters();
    this.flagAudit = new FlagAudit(deps.vault.path, deps.flags);
  }

  // Why: wired as VaultDeps.hook: a deploy is committed (the live pointer swapped) only once the audit log has
  // taken every record leading up to it; a heal is not held back (restoring the signed release comes first).
  async atVaultStep(step: string): Promise<void> {
    if (step === 'before-swap' && this.running?.startsWith('deploy ') === true) await this.deps.audit.ensureWritable();
  }

  get vault(): Vault {
    return this.deps.vault;
  }

  /** Name of the operation being run, or null when idle. */
  get busyWith(): string | null {
    return this.running;
  }

  get queueLength(): number {
    return this.queued;
  }

  // Why: the watchdog and STATUS= are refreshed when the guardian's state changes.
  subscribe(fn: () => void): void {
    this.onChange.push(fn);
  }

  // Why: metrics observe how long each heal took (from the vault's heal call to the release back in place).
  subscribeHeals(fn: (ms: number) => void): void {
    this.onHeal.push(fn);
  }

  private changed(): void {
    for (const fn of this.onChange) fn();
  }

  // Why: the single queue; a job queued after shutdown began is refused, the running one finishes (vault never half-changed).
  private exclusive<T>(label: string, fn: () => Promise<T>, bounded: boolean, context: Record<string, unknown> = {}): Promise<T> {
    if (this.stopping) return Promise.reject(new SentinelError('unavailable', 'the daemon is shutting down', { where: label }));
    if (bounded && this.queued >= this.deps.maxQueuedDeploys) {
      return Promise.reject(new SentinelError('busy', `deploy queue is full (${String(this.deps.maxQueuedDeploys)} waiting)`, { where: label }));
    }
    this.queued++;
    const run = async (): Promise<T> => {
      this.queued--;
      if (this.stopping) throw new SentinelError('unavailable', 'the daemon is shutting down; not started', { where: label });
      this.running = label;
      this.deps.audit.context = context;
      try {
        return await fn();
      } finally {
        await this.deps.audit.flush();
        this.deps.audit.context = {};
        this.running = null;
        this.changed();
      }
    };
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  // Why: one deploy, from the socket or the inbox, answered once live (src/daemon/deploy-job.ts); its tail runs
  // on in the same queued job. `noFollow`: a bundle path that is a symlink is refused (bad-path), not followed.
  deploy(bundlePath: string, source: string, opts: { noFollow?: boolean } = {}): Promise<AuditedResult> {
    let begun = false;
    let answered = false;
    let settle: (reply: Promise<AuditedResult>) => void = () => undefined;
    const reply = new Promise<AuditedResult>((resolve) => (settle = resolve));
    // Once only: the live result, or the refusal (a rejection made after the reply would be one nobody handles).
    const answer = (r: Promise<AuditedResult>): void => {
      if (!answered) settle(r);
      answered = true;
    };
    const run = async (): Promise<void> => {
      begun = true;
      await deployJob(this.deployHost(), bundlePath, source, opts, answer);
    };
    this.exclusive(`deploy ${bundlePath}`, run, true, { source, bundle: bundlePath }).catch((e: unknown) => {
      if (!begun && isSentinelError(e)) {
        countReject(this.counters, e.code);
        this.deps.audit.record('reject', { source, bundle: bundlePath, code: e.code, detail: e.message });
      }
      if (!answered) answer(Promise.reject(e instanceof Error ? e : new SentinelError('internal', String(e))));
    });
    return reply;
  }

  private deployHost(): DeployJobHost {
    const { vault, audit, log, trust } = this.deps;
    const wentLive = (r: DeployResult): void => void (this.lastVerify = { atMs: performance.now(), ok: true, version: r.version, releaseId: r.releaseId });
    return { vault, audit, log, ...(trust === undefined ? {} : { trust }), counters: this.counters, wentLive, audited: (r) => this.audited(r), tailEnded: (o) => (this.lastDeployTail = o) };
  }

  // Why: `verify` over the socket and the periodic full check; records when the vault was last seen intact.
  verify(reason: string): Promise<VerifyReport> {
    return this.exclusive(`verify (${reason})`, () => this.verifyNow(reason), false);
  }

  private async verifyNow(reason: string): Promise<VerifyReport> {
    const started = performance.now();
    const trust = this.deps.trust?.();
    // The live release only (what a heal can restore); `sentinel vault verify` checks every kept release and bundle too.
    const report = await this.deps.vault.verify(trust === undefined ? { scope: 'live' } : { trust, scope: 'live' });
    this.counters.verifies++;
    const empty = !report.ok && (await this.isFreshVault(report));
    this.lastVerify = { atMs: performance.now(), ok: report.ok || empty, version: report.version, releaseId: report.releaseId, empty };
    this.deps.log.info({ event: 'verify', reason, ok: report.ok || empty, empty, version: report.version, releaseId: report.releaseId, files: report.checkedFiles, problems: empty ? 0 : report.problems.length, latencyMs: Math.round(performance.now() - started) }, report.ok ? 'vault intact' : empty ? 'vault empty: waiting for the first signed release' : 'vault violated');
    return report;
  }

  // Why: a vault just made by `vault init` has no release yet; that is a state to wait in, not a tamper to heal.
  // Only exactly that: the sole problem is the missing release, no version was ever deployed, nothing is kept.
  private async isFreshVault(report: VerifyReport): Promise<boolean> {
    if (report.version !== null || report.problems.length !== 1 || report.problems[0]?.path !== 'current') return false;
    const status = await this.deps.vault.status().catch(() => null);
    return status !== null && status.version === null && status.highestVersion === 0 && status.releases.length === 0;
  }

  // Why: `heal` over the socket: re-stage the live release from its stored signed bundle.
  heal(reason: string): Promise<AuditedResult> {
    return this.exclusive(`heal (${reason})`, async () => this.audited(await this.healNow(reason)), false, { source: reason });
  }

  // Why: the daemon says precisely when an operation that went live has no record in the log yet.
  private async audited(result: DeployResult): Promise<AuditedResult> {
    await this.deps.audit.flush();
    const audited = !this.deps.audit.failing;
    if (!audited) this.deps.log.error({ event: 'audit-held', releaseId: result.releaseId, version: result.version, ...this.deps.audit.state }, 'went live, but its audit records are held: the audit log cannot be written');
    return { ...result, audited };
  }

  private async healNow(reason: string): Promise<DeployResult> {
    const started = performance.now();
    const trust = this.deps.trust?.();
    const result = await this.deps.vault.heal(trust === undefined ? {} : { trust });
    this.counters.heals++;
    this.lastError = null;
    this.lastVerify = { atMs: performance.now(), ok: true, version: result.version, releaseId: result.releaseId };
    const elapsedMs = performance.now() - started;
    for (const fn of this.onHeal) fn(elapsedMs);
    const latencyMs = Math.round(elapsedMs);
    this.deps.log.info({ event: 'heal', reason, version: result.version, releaseId: result.releaseId, releaseDir: result.releaseDir, latencyMs }, 'vault healed');
    return result;
  }

  // Why: a watch event, the periodic verify or the flag audit found something: verify, record the tamper, heal unless alert-only.
  checkTamper(reason: string, opts: { flagsOnly?: boolean; /** Who changed inode flags, as the kernel saw it: those whose inode lost +i are named in the tamper record. */ changedBy?: readonly { ino: string }[] } = {}): Promise<TamperOutcome> {
    if (this.checkPending) return Promise.resolve({ tampered: false, healed: false, problems: [] });
    this.checkPending = true;
    return this.exclusive(
      `tamper check (${reason})`,
      async () => {
        this.checkPending = false;
        let changers = opts.changedBy ?? [];
        if (opts.flagsOnly === true) {
          const unsealed = await this.flagAudit.unsealed();
          if (unsealed.length === 0) return { tampered: false, healed: false, problems: [] };
          // The kernel filters by filesystem only: keep who changed a live inode that is now unsealed.
          const inodes = new Set(await Promise.all(unsealed.slice(0, 256).map((p) => lstat(join(this.deps.vault.path, p)).then((st) => String(st.ino), () => ''))));
          changers = changers.filter((c) => inodes.has(c.ino));
          this.deps.log.warn({ event: 'flag-audit', reason, unsealed: unsealed.slice(0, 20), count: unsealed.length }, 'sealed paths lost +i');
        }
        const report = await this.verifyNow(reason);
        if (this.intact(report)) {
          this.memory.clear();
          return { tampered: false, healed: false, problems: [] };
        }
        const problems = summariseProblems(report);
        const step = this.memory.decide(await seenProblems(this.deps.vault.path, report.problems));
        if (step === 'persisting') {
          this.deps.log.warn({ event: 'tamper-persists', reason, problems, count: report.problems.length }, 'vault still tampered as recorded: a heal cannot repair it, or a failed heal waits for its retry');
          return { tampered: true, healed: false, problems };
        }
        if (step === 'record') this.recordTamper(reason, report, changers);
        if (this.deps.onTamper === 'alert') return { tampered: true, healed: false, problems };
        try {
          await this.healNow(`tamper: ${reason}`);
          // The heal restores the live release only: what it could not repair is said now, not healed every period.
          const left = await this.verifyNow(`after heal (${reason})`);
          if (this.intact(left)) {
            this.memory.clear();
            return { tampered: true, healed: true, problems };
          }
          const fresh = this.memory.afterHeal(await seenProblems(this.deps.vault.path, left.problems));
          if (fresh.length > 0) this.recordTamper(`${reason}: found after the heal`, { ...left, problems: fresh }, []);
          this.deps.log.error({ event: 'heal-incomplete', reason, remaining: summariseProblems(left), count: left.problems.length }, 'healed the live release; problems a heal cannot repair remain');
          return { tampered: true, healed: true, problems };
        } catch (e) {
          this.memory.healFailed();
          const message = messageOf(e);
          this.lastError = `heal failed: ${message}`;
          this.counters.healFailures++;
          this.deps.log.error({ event: 'heal-failed', reason, code: isSentinelError(e) ? e.code : 'internal', err: message }, 'heal failed');
          return { tampered: true, healed: false, problems, healError: message };
        }
      },
      false,
      { source: reason },
    ).finally(() => {
      this.checkPending = false;
    });
  }

  // A fresh vault waiting for its first release counts as intact (verifyNow set lastVerify.empty).
  private intact(report: VerifyReport): boolean {
    return report.ok || this.lastVerify?.empty === true;
  }

  private recordTamper(reason: string, report: VerifyReport, changers: readonly { ino: string }[]): void {
    const problems = summariseProblems(report);
    this.counters.tampers++;
    const changedBy = changers.length > 0 ? { changedBy: changers } : {};
    this.deps.log.error({ event: 'tamper', reason, version: report.version, releaseId: report.releaseId, problems, count: report.problems.length, ...changedBy }, 'vault tampered');
    this.deps.audit.record('tamper', { reason, version: report.version, releaseId: report.releaseId, problems, count: report.problems.length, ...changedBy });
  }

  // Why: SIGHUP may switch between heal and alert.
  setTamperPolicy(policy: TamperPolicy): void {
    this.deps.onTamper = policy;
  }

  status(): Promise<VaultStatus> {
    return this.deps.vault.status();
  }

  // Why: SIGTERM — refuse new work, let the running operation finish, so the vault is never left half-changed.
  async drain(): Promise<void> {
    this.stopping = true;
    await this.tail;
  }
}
