// The daemon's composition root: the only place that builds adapters for the long-running process.
import { mkdir, readFile, writeFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { parsePublicKey } from '../core/keys.js';
import { assertTrustPolicy, type TrustPolicy } from '../core/trust.js';
import { parseNotifySocket, parseWatchdog } from '../core/sd-notify.js';
import { createLogger, type Logger } from '../adapters/logger.js';
import { createNotifier } from '../adapters/notify.js';
import { defaultFlagStore, type FlagStore } from '../adapters/flags.js';
import { packageRoot } from '../adapters/package-root.js';
import { MAX_KEY_FILE_BYTES, readSmallFile } from '../adapters/small-file.js';
import { openVault } from '../vault/index.js';
import type { Vault } from '../vault/types.js';
import { resolveDaemonConfig, type DaemonConfig } from './config.js';
import { AuditRecorder } from './audit-recorder.js';
import { AuditGuard } from './audit-guard.js';
import { openDaemonAudit } from './audit-setup.js';
import { Sentinel } from './sentinel.js';
import { ControlServer, probeLive } from './control-server.js';
import type { ControlRequest } from './control-protocol.js';
import { SystemdNotifier, type HealthVerdict } from './watchdog.js';
import { TamperWatch } from './tamper-watch.js';
import { Inbox } from './inbox.js';
import { OnDemandHashPool } from './on-demand-hash-pool.js';
import { buildComponents, type DaemonComponent } from './components.js';
import { newCounters } from './counters.js';
import { serviceEventAuditFields } from './service-event.js';

export interface DaemonOptions {
  configFile?: string;
  flags?: { vault?: string; trust?: string[]; socket?: string; inbox?: string; audit?: string; stateDir?: string; logLevel?: string };
  env?: NodeJS.ProcessEnv;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (the CLI does; tests drive stop()/reload() directly). */
  signals?: boolean;
  logger?: Logger;
  flagStore?: FlagStore;
}

export interface DaemonHandle {
  readonly config: DaemonConfig;
  readonly sentinel: Sentinel;
  readonly log: Logger;
  /** Resolves with the exit code once the daemon has stopped. */
  readonly exited: Promise<number>;
  stop(reason: string): Promise<void>;
  reload(): Promise<boolean>;
  status(): Promise<unknown>;
}

async function loadTrust(config: DaemonConfig): Promise<TrustPolicy> {
  const keys = [];
  for (const [i, file] of config.vault.trust.entries()) {
    const text = await readSmallFile(file, { what: 'trusted public key', maxBytes: MAX_KEY_FILE_BYTES, badFileCode: 'config', where: `vault.trust[${String(i)}]: ${file}` });
    keys.push(parsePublicKey(text, file));
  }
  const policy = { keys, threshold: config.vault.threshold };
  try {
    assertTrustPolicy(policy);
  } catch (e) {
    throw new SentinelError('config', `bad trust policy: ${(e as Error).message}`, { where: 'vault.trust / vault.threshold', cause: e });
  }
  return policy;
}

async function productVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${String(s)}s` : `${String(Math.round(s / 60))}m`;
}

/** Settings a SIGHUP applies to the running daemon; every other change waits for a restart (and is logged as ignored). */
const LIVE_RELOAD_KEYS = new Set(['log.level', 'vault.onTamper', 'vault.trust', 'vault.threshold', 'limits.verifyIntervalMs', 'limits.flagAuditIntervalMs', 'limits.tamperDebounceMs', 'limits.maxVerifyAgeMs']);

function settingsOf(c: DaemonConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const [section, value] of Object.entries(c)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out.set(`${section}.${k}`, JSON.stringify(v) ?? 'undefined');
    } else out.set(section, JSON.stringify(value) ?? 'undefined');
  }
  return out;
}

// Why: a reload reports every setting it did not apply, not only a few known ones.
function changedKeys(a: DaemonConfig, b: DaemonConfig): string[] {
  const x = settingsOf(a);
  const y = settingsOf(b);
  return [...new Set([...x.keys(), ...y.keys()])].filter((k) => x.get(k) !== y.get(k)).sort();
}

// Why: the running configuration says what is in force: the old value for everything a reload cannot apply.
function withLiveKeys(current: DaemonConfig, next: DaemonConfig): DaemonConfig {
  return {
    ...current,
    log: { ...current.log, level: next.log.level },
    vault: { ...current.vault, onTamper: next.vault.onTamper, trust: next.vault.trust, threshold: next.vault.threshold },
    limits: { ...current.limits, verifyIntervalMs: next.limits.verifyIntervalMs, flagAuditIntervalMs: next.limits.flagAuditIntervalMs, tamperDebounceMs: next.limits.tamperDebounceMs, maxVerifyAgeMs: next.limits.maxVerifyAgeMs },
  };
}

// Why: `sentinel daemon` — open (recover) and verify the vault, then serve; READY=1 only after the vault was verified.
export async function startDaemon(opts: DaemonOptions): Promise<DaemonHandle> {
  const env = opts.env ?? process.env;
  let config = await resolveDaemonConfig(opts.configFile, opts.flags ?? {});
  const log = opts.logger ?? createLogger(config.log.level);
  const version = await productVersion();
  const startedAt = performance.now();
  let trust = await loadTrust(config);
  const flags = opts.flagStore ?? defaultFlagStore();
  const notifyAddress = parseNotifySocket(env.NOTIFY_SOCKET);
  const watchdogSettings = parseWatchdog(env.WATCHDOG_USEC, env.WATCHDOG_PID, process.pid);
  log.info({ event: 'start', version, vault: config.vault.path, socket: config.control.socket, flags: flags.kind, notify: notifyAddress !== null, watchdogUsec: watchdogSettings?.periodUsec ?? null }, 'sentinel starting');

  // A second daemon must leave before it appends to the first one's audit log (it would break the chain).
  if (await probeLive(config.control.socket)) throw new SentinelError('busy', 'another daemon is serving this control socket', { where: config.control.socket });
  const { auditLog, report: auditReport } = await openDaemonAudit({ auditPath: config.audit.path, stateDir: config.stateDir, appendOnly: config.audit.appendOnly }, { flags, log });
  const counters = newCounters();
  const recorder = new AuditRecorder(auditLog, log, { retryMs: config.limits.auditRetryMs, maxHeldRecords: config.limits.maxHeldAuditRecords, counters });
  const { trimmedFragment, continued } = auditReport;
  recorder.record('start', { version, pid: process.pid, vault: config.vault.path, auditLines: auditReport.lines, appendOnly: auditReport.appendOnly, ...(trimmedFragment !== undefined ? { trimmedFragment } : {}) });
  if (continued !== undefined) {
    counters.auditTampers++;
    recorder.record('tamper', { target: 'audit-log', where: config.audit.path, problem: continued.movedAside === null ? 'missing at start' : 'replaced while stopped', action: 'new chain', movedAside: continued.movedAside });
  }
  const auditGuard = new AuditGuard(auditLog, recorder, log, counters, config.limits.flagAuditIntervalMs);
  auditGuard.start();

  const hash = new OnDemandHashPool(config.limits.hashIdleMs);
  let vault: Vault;
  // The guardian exists once the vault is open; its hook holds a deploy's commit until the audit log took its records.
  let guardian: Sentinel | null = null;
  try {
    vault = await openVault(config.vault.path, { flags, hash, now: () => new Date(), onEvent: (e) => recorder.vaultEvent(e), hook: (step) => guardian?.atVaultStep(step) ?? Promise.resolve() });
  } catch (e) {
    await auditGuard.close();
    await recorder.close();
    await auditLog.close();
    await hash.close();
    throw e;
  }
  const sentinel = new Sentinel({ vault, audit: recorder, log, flags, onTamper: config.vault.onTamper, maxQueuedDeploys: config.limits.maxQueuedDeploys, trust: () => trust, counters });
  guardian = sentinel;

  const cleanupEarly = async (): Promise<void> => {
    await auditGuard.close();
    await recorder.close();
    await auditLog.close();
    await hash.close();
  };
  const first = await sentinel.checkTamper('startup').catch(async (e: unknown) => {
    await cleanupEarly();
    throw e;
  });
  if (first.tampered && !first.healed) {
    const report = await sentinel.verify('startup re-check');
    if (!report.ok) {
      await cleanupEarly();
      const p = report.problems[0];
      throw new SentinelError(p?.code ?? 'tampered', `vault does not verify at start and was not healed: ${p?.message ?? 'unknown problem'}`, { where: p?.path ?? config.vault.path });
    }
  }

  let components: DaemonComponent[];
  try {
    components = await buildComponents(config, { log, audit: recorder });
  } catch (e) {
    await cleanupEarly();
    throw e;
  }
  const statusLine = (): string => {
    const lv = sentinel.lastVerify;
    const parts = [
      lv === null ? 'vault: not verified' : lv.empty === true ? 'vault empty: waiting for the first signed release' : `vault v${String(lv.version ?? '?')} ${(lv.releaseId ?? '').slice(0, 12)} ${lv.ok ? 'intact' : 'VIOLATED'} (verified ${ago(performance.now() - lv.atMs)} ago)`,
      `deploys ${String(sentinel.counters.deploys)}, rejects ${String(sentinel.counters.rejects)}, tampers ${String(sentinel.counters.tampers)}, heals ${String(sentinel.counters.heals)}`,
    ];
    if (sentinel.busyWith !== null) parts.push(`busy: ${sentinel.busyWith.split(' ')[0] ?? ''}`);
    for (const c of components) parts.push(c.statusLine());
    return parts.join('; ');
  };
  const health = (): HealthVerdict => {
    const lv = sentinel.lastVerify;
    if (lv === null) return { ok: false, reason: 'vault never verified' };
    const age = performance.now() - lv.atMs;
    const busyLong = sentinel.busyWith !== null;
    if (!busyLong && age > config.limits.verifyIntervalMs + config.limits.maxVerifyAgeMs) return { ok: false, reason: `last verify ${ago(age)} ago` };
    if (recorder.failing) return { ok: false, reason: `audit log writes failing since ${recorder.state.failingSince ?? '?'} (${recorder.state.error ?? ''}); ${String(recorder.state.held)} records held` };
    for (const c of components) {
      const failed = c.failed?.();
      if (failed !== undefined && failed !== null) return { ok: false, reason: failed };
    }
    return { ok: true };
  };
  const notifier = new SystemdNotifier({
    notifier: notifyAddress === null ? null : await createNotifier(notifyAddress, { pid: process.pid }),
    settings: watchdogSettings,
    log,
    maxEventLoopLagMs: config.limits.maxEventLoopLagMs,
    health,
    statusLine,
  });
  sentinel.subscribe(() => void notifier.status());

  const incoming = join(config.stateDir, 'incoming');
  await mkdir(incoming, { recursive: true, mode: 0o700 });
  const handle = async (request: ControlRequest): Promise<unknown> => {
    switch (request.op) {
      case 'status':
        return statusReport();
      case 'verify': {
        const report = await sentinel.verify('control socket');
        if (!report.ok) void sentinel.checkTamper('control socket verify found problems');
        return report;
      }
      case 'heal':
        return sentinel.heal('control socket');
      case 'service-event': {
        const { op: _op, id: _id, ...event } = request;
        const target = config.targets.find((t) => t.unit === event.unit)?.name ?? null;
        log.warn({ event: 'service-event', unit: event.unit, result: event.result, target, evidenceLines: event.evidence.length }, event.message);
        recorder.record('recovery', serviceEventAuditFields(event, target));
        await recorder.flush();
        if (recorder.failing) throw new SentinelError('io', 'the audit log cannot be written now; the event is held and written once it can', { where: config.audit.path });
        return { recorded: true, target, evidenceLines: event.evidence.length };
      }
      case 'deploy': {
        if ('bundlePath' in request) return sentinel.deploy(request.bundlePath, 'socket');
        const file = join(incoming, `${randomBytes(12).toString('hex')}.bundle`);
        await writeFile(file, Buffer.from(request.bundleBase64, 'base64'), { mode: 0o600 });
        try {
          return await sentinel.deploy(file, 'socket');
        } finally {
          await unlink(file).catch(() => undefined);
        }
      }
    }
  };
  const control = new ControlServer({ socketPath: config.control.socket, group: config.control.group, maxRequestBytes: config.limits.maxRequestBytes, requestTimeoutMs: config.limits.requestTimeoutMs, maxClients: config.limits.maxClients, log, handle });

  const tamperOptions = (c: DaemonConfig) => ({ vaultPath: vault.path, depth: c.limits.watchDepth, debounceMs: c.limits.tamperDebounceMs, verifyIntervalMs: c.limits.verifyIntervalMs, flagAuditIntervalMs: c.limits.flagAuditIntervalMs, flagTracer: c.vault.flagTracer });
  const tamper = new TamperWatch(sentinel, log, tamperOptions(config));
  let inbox: Inbox | null = null;

  const statusReport = async (): Promise<unknown> => ({
    daemon: { pid: process.pid, version, uptimeMs: Math.round(performance.now() - startedAt), memory: process.memoryUsage(), hashWorkers: hash.active, busyWith: sentinel.busyWith, queued: sentinel.queueLength, statusLine: statusLine() },
    vault: { ...(await sentinel.status()), lastVerify: sentinel.lastVerify === null ? null : { ...sentinel.lastVerify, agoMs: Math.round(performance.now() - sentinel.lastVerify.atMs) }, onTamper: config.vault.onTamper },
    watchdog: { notify: notifier.enabled, periodUsec: notifier.watchdog?.periodUsec ?? null, pings: notifier.pings, healthy: health().ok, reason: health().reason ?? null },
    counters: { ...sentinel.counters },
    audit: { path: config.audit.path, ...recorder.state },
    tamperWatch: { directories: tamper.watchedDirectories, events: tamper.events, flagTracer: tamper.tracerState, flagEvents: tamper.flagEvents },
    inbox: inbox === null ? null : { dir: config.vault.inbox, processed: inbox.processed },
    components: Object.fromEntries(components.map((c) => [c.name, c.status()])),
  });

  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => {
    resolveExit = r;
  });
  let stopping: Promise<void> | null = null;

  try {
    await control.listen();
    await tamper.start();
    if (config.vault.inbox !== undefined) {
      inbox = new Inbox(config.vault.inbox, sentinel, log, config.limits.inboxStableMs);
      await inbox.start();
    }
    for (const c of components) await c.start();
  } catch (e) {
    await tamper.close();
    await inbox?.close();
    await control.close();
    for (const c of components) await c.stop().catch(() => undefined);
    await cleanupEarly();
    throw e;
  }

  const stop = (reason: string): Promise<void> => {
    if (stopping !== null) return stopping;
    stopping = (async () => {
      log.info({ event: 'stopping', reason, busyWith: sentinel.busyWith, queued: sentinel.queueLength }, 'sentinel stopping');
      await notifier.stopping();
      await tamper.close();
      await inbox?.close();
      control.stopAccepting();
      await sentinel.drain();
      await control.close();
      for (const c of components) await c.stop().catch((e: unknown) => log.warn({ event: 'component-stop-failed', component: c.name, err: (e as Error).message }, 'component stop failed'));
      await auditGuard.close();
      recorder.record('stop', { reason });
      await recorder.close();
      if (recorder.failing) log.error({ event: 'audit-lost', ...recorder.state }, 'stopping with audit records the log could not take; they are lost');
      await auditLog.close();
      await hash.close();
      log.info({ event: 'stopped', reason }, 'sentinel stopped');
      resolveExit(0);
    })();
    return stopping;
  };

  const reload = async (): Promise<boolean> => {
    let next: DaemonConfig;
    let nextTrust: TrustPolicy;
    try {
      next = await resolveDaemonConfig(opts.configFile, opts.flags ?? {});
      nextTrust = await loadTrust(next);
    } catch (e) {
      log.error({ event: 'reload', ok: false, code: isSentinelError(e) ? e.code : 'internal', where: isSentinelError(e) ? e.where : undefined, err: (e as Error).message }, 'new configuration rejected; keeping the old one');
      return false;
    }
    await notifier.reloading(false);
    const needRestart = changedKeys(config, next).filter((k) => !LIVE_RELOAD_KEYS.has(k));
    if (needRestart.length > 0) log.warn({ event: 'reload', ignored: needRestart }, 'these settings take effect only after a restart');
    config = withLiveKeys(config, next);
    trust = nextTrust;
    log.level = config.log.level;
    sentinel.setTamperPolicy(config.vault.onTamper);
    tamper.reconfigure(tamperOptions(config));
    auditGuard.reconfigure(config.limits.flagAuditIntervalMs);
    recorder.record('reload', { onTamper: config.vault.onTamper, logLevel: config.log.level, ignored: needRestart });
    await recorder.flush();
    log.info({ event: 'reload', ok: true }, 'configuration reloaded');
    await notifier.reloading(true);
    return true;
  };

  if (opts.signals === true) {
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGHUP', () => void reload());
  }

  await notifier.ready();
  log.info({ event: 'ready', vault: vault.path, version: sentinel.lastVerify?.version ?? null, releaseId: sentinel.lastVerify?.releaseId ?? null, latencyMs: Math.round(performance.now() - startedAt) }, statusLine());

  return { get config() { return config; }, sentinel, log, exited, stop, reload, status: statusReport };
}
