// The daemon's composition root: the only place that builds adapters for the long-running process.
// It starts the parts in order; one stack stops them in reverse order (docs/DAEMON.md#start-up-readiness-shutdown).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SentinelError, messageOf } from '../core/errors.js';
import type { TrustPolicy } from '../core/trust.js';
import { parseNotifySocket, parseWatchdog } from '../core/sd-notify.js';
import { createLogger, type Logger } from '../adapters/logger.js';
import { createNotifier } from '../adapters/notify.js';
import { defaultFlagStore, type FlagStore } from '../adapters/flags.js';
import { packageVersion } from '../adapters/package-root.js';
import { openVault } from '../vault/index.js';
import { asConfigRejection, markConfigRejected, resolveDaemonConfig, type DaemonConfig } from './config.js';
import { parseMetricsListen } from '../core/metrics-listen.js';
import { withLiveKeys } from './config-reload.js';
import { ConfigReloader } from './reloader.js';
import { AuditRecorder } from './audit-recorder.js';
import { AuditGuard } from './audit-guard.js';
import { openDaemonAudit } from './audit-setup.js';
import { Sentinel } from './sentinel.js';
import { ControlServer, probeLive } from './control-server.js';
import { assertSafeSocketDir } from './socket-dir.js';
import { assertVaultPresent } from './vault-present.js';
import { SystemdNotifier } from './watchdog.js';
import { TamperWatch } from './tamper-watch.js';
import { Inbox } from './inbox.js';
import { OnDemandHashPool } from './on-demand-hash-pool.js';
import { PartStack, buildComponents, closing, ebpfComponent, resetTarget, traceTargets } from './components.js';
import { EbpfHost } from './ebpf-host.js';
import { newCounters } from './counters.js';
import { controlRequestHandler, refusalRecorder } from './requests.js';
import { Uploads } from './uploads.js';
import { DaemonStatus } from './status-report.js';
import { loadTrust } from './trust-anchors.js';
import type { SentinelMetrics } from './metrics.js';
import { DaemonSignals, isStoppedWhileStarting } from './signals.js';
import type { DaemonPart } from './components.js';

/** How `sentinel daemon` (or a test) starts the daemon: config file or flags, env, signals, injected logger and flag store. */
export interface DaemonOptions {
  configFile?: string;
  flags?: { vault?: string; trust?: string[]; socket?: string; inbox?: string; audit?: string; stateDir?: string; logLevel?: string };
  env?: NodeJS.ProcessEnv;
  /** SIGTERM/SIGINT/SIGHUP handlers: true installs them now; the CLI passes the ones it installed before loading
   * the daemon (src/daemon/signals.ts); tests drive stop()/reload() directly. */
  signals?: boolean | DaemonSignals;
  logger?: Logger;
  flagStore?: FlagStore;
  /** Another BPF object for the engine (tests: a missing one shows the /proc fallback). */
  bpfObject?: string;
}

/** The running daemon, for the CLI and tests: stop, reload, status, and the exit it resolves with. */
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

// Why: the vault must verify at start (or be healed) before the daemon serves; with onTamper alert a violation fails start.
async function verifyAtStart(sentinel: Sentinel, vaultPath: string): Promise<void> {
  const first = await sentinel.checkTamper('startup');
  if (!first.tampered || first.healed) return;
  const report = await sentinel.verify('startup re-check');
  // A vault fresh again (a first deploy that crashed, recovered by the heal's recovery) waits for its release, as at any start.
  if (report.ok || sentinel.lastVerify?.empty === true) return;
  const p = report.problems[0];
  throw new SentinelError(p?.code ?? 'tampered', `vault does not verify at start and was not healed: ${p?.message ?? 'unknown problem'}`, { where: p?.path ?? vaultPath });
}

// Why: `sentinel daemon` — open (recover) and verify the vault, then serve; READY=1 only after the vault was verified.
export async function startDaemon(opts: DaemonOptions): Promise<DaemonHandle> {
  const env = opts.env ?? process.env;
  // Before the first await: a stop signal during start-up is held, then ends start-up cleanly (below).
  const signals = opts.signals === true ? new DaemonSignals().install() : opts.signals === false || opts.signals === undefined ? null : opts.signals;
  let config = await asConfigRejection(resolveDaemonConfig(opts.configFile, opts.flags ?? {}));
  const log = opts.logger ?? createLogger(config.log.level);
  const version = packageVersion();
  const startedAt = performance.now();
  let trust: TrustPolicy = await asConfigRejection(loadTrust(config));
  const flags = opts.flagStore ?? defaultFlagStore();
  const notifyAddress = parseNotifySocket(env.NOTIFY_SOCKET);
  const watchdogSettings = parseWatchdog(env.WATCHDOG_USEC, env.WATCHDOG_PID, process.pid);
  log.info({ event: 'start', version, vault: config.vault.path, socket: config.control.socket, flags: flags.kind, notify: notifyAddress !== null, watchdogUsec: watchdogSettings?.periodUsec ?? null }, 'sentinel starting');

  // A socket in a directory others can write is the operator's configuration to fix (no restart changes it): exit 3.
  // Checked before the probe below: anyone who can write that directory can also plant a listener at the socket's name.
  try {
    assertSafeSocketDir(config.control.socket, 'control socket');
    const metricsAt = config.metrics.listen !== undefined ? parseMetricsListen(config.metrics.listen) : null;
    if (metricsAt !== null && 'kind' in metricsAt && metricsAt.kind === 'unix') assertSafeSocketDir(metricsAt.path, 'metrics socket');
    // No vault yet (`vault init` not run): refused before the audit log or a state directory is made.
    assertVaultPresent(config);
  } catch (e) {
    throw markConfigRejected(e);
  }
  // A second daemon must leave before it appends to the first one's audit log (it would break the chain).
  if (await probeLive(config.control.socket)) throw new SentinelError('busy', 'another daemon is serving this control socket', { where: config.control.socket });
  const { auditLog, report: auditReport } = await openDaemonAudit({ auditPath: config.audit.path, stateDir: config.stateDir, appendOnly: config.audit.appendOnly }, { flags, log });
  const stack = new PartStack(log);
  const counters = newCounters();
  const recorder = new AuditRecorder(auditLog, log, { retryMs: config.limits.auditRetryMs, maxHeldRecords: config.limits.maxHeldAuditRecords, counters });
  const auditGuard = new AuditGuard(auditLog, recorder, log, counters, config.limits.flagAuditIntervalMs);
  const hash = new OnDemandHashPool(config.limits.hashIdleMs);
  let tamper: TamperWatch | null = null;
  let inbox: Inbox | null = null;
  let notifier: SystemdNotifier | null = null;
  let sentinel: Sentinel | null = null;
  let status: DaemonStatus | null = null;
  let controlServer: ControlServer | null = null;
  let reloadState: ConfigReloader | null = null;
  let metrics: SentinelMetrics | null = null;
  let vaultPath = config.vault.path;
  const tamperOptions = (c: DaemonConfig) => ({ vaultPath, depth: c.limits.watchDepth, debounceMs: c.limits.tamperDebounceMs, verifyIntervalMs: c.limits.verifyIntervalMs, flagAuditIntervalMs: c.limits.flagAuditIntervalMs, flagTracer: c.vault.flagTracer });

  // The parts, in start order; stopped in reverse: STOPPING=1 first, the audit log and hash workers last.
  // From the start record on, a stop signal held during start-up ends start-up after the part that is starting.
  const part = async (p: DaemonPart): Promise<void> => {
    await stack.start(p);
    signals?.checkpoint();
  };
  try {
    await stack.start(closing('hash-pool', () => hash.close()));
    await stack.start(closing('audit-log', () => auditLog.close()));
    await part({
      name: 'audit-recorder',
      start: () => {
        const { trimmedFragment, continued } = auditReport;
        recorder.record('start', { version, pid: process.pid, vault: config.vault.path, auditLines: auditReport.lines, appendOnly: auditReport.appendOnly, ...(trimmedFragment !== undefined ? { trimmedFragment } : {}) });
        if (continued !== undefined) {
          counters.auditTampers++;
          recorder.record('tamper', { target: 'audit-log', where: config.audit.path, problem: continued.movedAside === null ? 'missing at start' : 'replaced while stopped', action: 'new chain', movedAside: continued.movedAside });
        }
        return Promise.resolve();
      },
      stop: async ({ reason, started }) => {
        if (started) recorder.record('stop', { reason });
        await recorder.close();
        if (started && recorder.failing) log.error({ event: 'audit-lost', ...recorder.state }, 'stopping with audit records the log could not take; they are lost');
      },
    });
    await part({ name: 'audit-guard', start: () => Promise.resolve(auditGuard.start()), stop: () => auditGuard.close() });
    // The guardian's hook holds a deploy's commit until the audit log took its records.
    const vault = await openVault(config.vault.path, { flags, hash, now: () => new Date(), onEvent: (e) => recorder.vaultEvent(e), hook: (step) => sentinel?.atVaultStep(step) ?? Promise.resolve() }, { trust });
    const guardian = new Sentinel({ vault, audit: recorder, log, flags, onTamper: config.vault.onTamper, maxQueuedDeploys: config.limits.maxQueuedDeploys, trust: () => trust, counters });
    sentinel = guardian;
    vaultPath = vault.path;
    await part({ name: 'vault', start: () => verifyAtStart(guardian, vaultPath), stop: () => guardian.drain() });
    // One eBPF engine for the daemon, when something uses it (targets, the flag tracer); opened before them, closed after.
    const ebpf = config.targets.length > 0 || config.vault.flagTracer === 'auto' ? new EbpfHost({ log: log.child({ component: 'ebpf' }), ...(opts.bpfObject !== undefined ? { objectPath: opts.bpfObject } : {}) }) : null;
    const components = [...(ebpf !== null ? [ebpfComponent(ebpf)] : []), ...(await buildComponents(config, { log, audit: recorder, ebpf, onTargetEvent: (e) => metrics?.targetEvent(e) }))];
    const view = new DaemonStatus({ version, startedAt, config: () => config, sentinel: guardian, recorder, hash, components, tamper: () => tamper, inbox: () => inbox, notifier: () => notifier, control: () => controlServer, reload: () => reloadState });
    status = view;
    for (const c of components) await part(c);
    const uploads = new Uploads(join(config.stateDir, 'incoming'));
    const leftovers = await uploads.prepare();
    if (leftovers > 0) log.warn({ event: 'uploads-removed', count: leftovers, where: uploads.dir }, 'removed uploads left by an earlier run');
    const handle = controlRequestHandler({ sentinel: guardian, recorder, log, config: () => config, status: () => view.report(), resetTarget: (name) => resetTarget(components, name), trace: (name) => traceTargets(components, name), reload: () => (reloadState === null ? Promise.reject(new SentinelError('unavailable', 'the daemon is still starting', { where: 'reload' })) : reloadState.reload()) });
    const control = new ControlServer({
      socketPath: config.control.socket,
      group: config.control.group,
      maxRequestBytes: config.limits.maxRequestBytes,
      requestTimeoutMs: config.limits.requestTimeoutMs,
      clientIdleMs: config.limits.clientIdleMs,
      maxClients: config.limits.maxClients,
      maxBufferedBytes: config.limits.maxBufferedBytes,
      uploads,
      log,
      handle,
      onRefused: refusalRecorder(counters, recorder),
    });
    controlServer = control;
    // Stopping the socket: no new connections, the running operation finishes and queued ones are refused, then close.
    const stopControl = async (): Promise<void> => {
      control.stopAccepting();
      await guardian.drain();
      await control.close();
    };
    await part({ name: 'control', start: () => control.listen(), stop: stopControl });
    // Prometheus metrics only when asked for: prom-client is loaded by no other path.
    if (config.metrics.listen !== undefined) {
      const { metricsPart } = await import('./metrics-part.js');
      const m = await metricsPart(config, { log, sentinel: guardian, components, healthy: () => view.condition().ok });
      metrics = m.metrics;
      await part(m.part);
    }
    const watch = new TamperWatch(guardian, log, tamperOptions(config), ebpf);
    tamper = watch;
    await part({ name: 'tamper-watch', start: () => watch.start(), stop: () => watch.close() });
    const inboxDir = config.vault.inbox;
    if (inboxDir !== undefined) {
      const box = new Inbox(inboxDir, guardian, log, { stableMs: config.limits.inboxStableMs, retryMs: config.limits.inboxRetryMs, counters });
      inbox = box;
      await part({ name: 'inbox', start: () => box.start(), stop: () => box.close() });
    }
    const systemd = new SystemdNotifier({
      notifier: notifyAddress === null ? null : await createNotifier(notifyAddress, { pid: process.pid }),
      settings: watchdogSettings,
      log,
      maxEventLoopLagMs: config.limits.maxEventLoopLagMs,
      health: () => view.health(),
      statusLine: () => view.line(),
    });
    notifier = systemd;
    guardian.subscribe(() => void systemd.status());
    await part({ name: 'sd-notify', start: () => systemd.ready(), stop: () => systemd.stopping() });
  } catch (e) {
    if (isStoppedWhileStarting(e)) {
      // A clean stop, as after start: every part that started is stopped, and the stop is audited.
      log.info({ event: 'stopping', reason: e.reason, starting: true, busyWith: sentinel?.busyWith ?? null }, 'sentinel stopping while starting');
      await stack.stopAll({ reason: e.reason, started: true });
      log.info({ event: 'stopped', reason: e.reason }, 'sentinel stopped');
    } else await stack.stopAll({ reason: `start failed: ${messageOf(e)}`, started: false });
    throw e;
  }
  const guardian = sentinel;
  const view = status;
  const tamperWatch = tamper;
  const systemd = notifier;

  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => {
    resolveExit = r;
  });
  let stopping: Promise<void> | null = null;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ event: 'stopping', reason, busyWith: guardian.busyWith, queued: guardian.queueLength }, 'sentinel stopping');
      await stack.stopAll({ reason, started: true });
      log.info({ event: 'stopped', reason }, 'sentinel stopped');
      resolveExit(0);
    })();
    return stopping;
  };

  const reloader = new ConfigReloader({
    read: async () => {
      const next = await resolveDaemonConfig(opts.configFile, opts.flags ?? {});
      return { config: next, trust: await loadTrust(next) };
    },
    current: () => config,
    apply: async (next, nextTrust, ignored) => {
      config = withLiveKeys(config, next);
      trust = nextTrust;
      log.level = config.log.level;
      guardian.setTamperPolicy(config.vault.onTamper);
      tamperWatch.reconfigure(tamperOptions(config));
      auditGuard.reconfigure(config.limits.flagAuditIntervalMs);
      recorder.record('reload', { onTamper: config.vault.onTamper, logLevel: config.log.level, ignored });
      await recorder.flush();
    },
    log,
    notify: systemd,
  });
  reloadState = reloader;
  const reload = (): Promise<boolean> => reloader.reload().then(() => true, () => false);

  log.info({ event: 'ready', vault: vaultPath, version: guardian.lastVerify?.version ?? null, releaseId: guardian.lastVerify?.releaseId ?? null, latencyMs: Math.round(performance.now() - startedAt) }, view.line());
  signals?.running({ stop: (reason) => void stop(reason), reload: () => void reload() });
  return { get config() { return config; }, sentinel: guardian, log, exited, stop, reload, status: () => view.report() };
}
