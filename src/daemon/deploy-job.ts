// A deploy in the guardian's queue (src/daemon/sentinel.ts): answered as soon as the new release is live
// and on stable storage (the vault's onLive), while the deploy's tail (state/highest.json raised, old
// releases pruned) goes on under the vault lock in the same queued job. How the tail ended is logged
// (`event: "deploy-tail"`), kept for `status`, and in the audit log's `deploy` record, which the vault
// writes after the tail (docs/DAEMON.md#control-socket).
import { performance } from 'node:perf_hooks';
import { SentinelError, messageOf } from '../core/errors.js';
import type { TrustPolicy } from '../core/trust.js';
import type { Logger } from '../adapters/logger.js';
import type { DeployResult, Vault } from '../vault/types.js';
import type { AuditRecorder } from './audit-recorder.js';
import { countReject, type DaemonCounters } from './counters.js';

/** A deploy or heal that went live; `audited: false` when its records are held because the audit log cannot be written. */
export type AuditedResult = DeployResult & { audited: boolean };

/** How the last deploy's tail ended (`status`): `warning` when it did not finish; the release is live either way. */
export interface DeployTailOutcome {
  releaseId: string;
  version: number;
  ok: boolean;
  warning?: string;
  /** performance.now() when it ended. */
  atMs: number;
}

/** What a deploy job reads and updates in the guardian. */
export interface DeployJobHost {
  vault: Vault;
  audit: AuditRecorder;
  log: Logger;
  trust?: () => TrustPolicy;
  counters: DaemonCounters;
  /** The release just made live: the guardian's last verify is this one. */
  wentLive(result: DeployResult): void;
  audited(result: DeployResult): Promise<AuditedResult>;
  tailEnded(outcome: DeployTailOutcome): void;
}

// Why: the client waits for what it asked (is the release live and durable), not for pruning, which may
// wait for the filesystem journal once per file; a refusal is logged and audited, never silently dropped.
// `answer` gets the reply once: the live result, or the refusal the job then also throws.
export async function deployJob(host: DeployJobHost, bundlePath: string, source: string, opts: { noFollow?: boolean }, answer: (reply: Promise<AuditedResult>) => void): Promise<void> {
  const started = performance.now();
  const vaultRejects = host.audit.vaultRejects;
  const seen: { live?: DeployResult } = {};
  const reply = (r: DeployResult): void => {
    seen.live = r;
    host.counters.deploys++;
    host.wentLive(r);
    host.log.info({ event: 'deploy', source, bundle: bundlePath, version: r.version, releaseId: r.releaseId, liveWindowMs: r.liveWindowMs, latencyMs: Math.round(performance.now() - started) }, 'release deployed');
    answer(host.audited(r));
  };
  let final: DeployResult;
  try {
    // The configured anchors (not vault.json alone) decide what may deploy.
    const trust = host.trust?.();
    final = await host.vault.deploy(bundlePath, { ...(trust === undefined ? {} : { trust }), ...(opts.noFollow === true ? { noFollow: true } : {}), onLive: reply });
  } catch (e) {
    // Once live, a failure is the tail's (the lock's release included): the deploy has happened.
    if (seen.live !== undefined) return tailEnded(host, seen.live, `a step after the swap failed (${messageOf(e)})`);
    const err = e instanceof SentinelError ? e : new SentinelError('internal', String(e), { cause: e });
    countReject(host.counters, err.code);
    // The vault audits its verdicts on the bundle; a refusal it did not record (a full disk) is audited here.
    if (host.audit.vaultRejects === vaultRejects) host.audit.record('reject', { source, bundle: bundlePath, code: err.code, detail: err.message, where: err.where });
    host.log.warn({ event: 'reject', source, bundle: bundlePath, code: err.code, where: err.where, latencyMs: Math.round(performance.now() - started) }, err.message);
    throw err;
  }
  if (seen.live === undefined) reply(final);
  else tailEnded(host, seen.live, final.warning);
}

// Why: the reply has gone; a tail that did not finish (or a swap whose durability is in doubt, already in
// the reply) must still reach the operator: the log at warn, `status`, and the audit record's detail.
function tailEnded(host: DeployJobHost, live: DeployResult, warning: string | undefined): void {
  host.tailEnded({ releaseId: live.releaseId, version: live.version, ok: warning === undefined, ...(warning === undefined ? {} : { warning }), atMs: performance.now() });
  const fields = { event: 'deploy-tail', releaseId: live.releaseId, version: live.version, ok: warning === undefined };
  if (warning === undefined) host.log.info(fields, 'deploy tail finished (highest.json, pruning)');
  else host.log.warn({ ...fields, warning }, `the release is live, but its deploy did not finish: ${warning}`);
}
