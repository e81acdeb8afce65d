// Prometheus metrics of the daemon (docs/DAEMON.md#metrics), through prom-client. Loaded only when
// `metrics.listen` is set: main.ts imports this module lazily, so a daemon without metrics never loads
// prom-client, and no CLI command does. Gauges and counters are read from the daemon's own state at
// scrape time (the same counters as `status` and STATUS=); the two histograms are fed by events.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DaemonCounters } from './counters.js';
import type { TargetAuditEvent, TargetStatus } from './targets/index.js';
import type { ItemState, ProtectionStatus } from './protection/index.js';

/** What the metrics read; parts made later are asked when scraped. */
export interface MetricsSources {
  /** The `vault` label: the configured vault path. */
  vault: string;
  counters: DaemonCounters;
  lastVerify(): { ok: boolean; version: number | null } | null;
  targets(): readonly TargetStatus[];
  protection(): ProtectionStatus | null;
  /** `status`'s watchdog.healthy: alive and nothing guarded in a bad state. */
  healthy(): boolean;
}

const ITEM_STATES: readonly ItemState[] = ['applied', 'refused', 'unsupported', 'ineffective', 'off', 'pending'];
const PROTECTION_ITEMS = ['slice', 'memoryLow', 'memoryMin', 'oom', 'expendable'] as const;

/** Heals measured on this VM: ~100-500 ms for a 100 MB vault; long tails for large vaults. */
const HEAL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Exit (or trigger) to recovery action started: about a millisecond via eBPF, 10 ms polling, seconds for probes. */
const RECOVERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Why: which detector started a recovery, for the histogram's `detector` label, from the audit events the
// supervisor already emits: an exit names how it was seen (`via`), the other triggers are named by their reason.
export function detectorOf(reason: string, lastExitVia: string | undefined): string {
  if (reason.startsWith('main PID ')) return lastExitVia ?? 'exit';
  if (reason.startsWith('health probe')) return 'health';
  if (reason.includes('TCP retransmits')) return 'retransmit';
  if (reason.startsWith('not running at start')) return 'start';
  if (reason.startsWith('reset by the operator')) return 'operator';
  if (reason.startsWith('main thread stalled')) return 'stall';
  return 'other';
}

// Why: a counter is the daemon's own count, set at scrape time (prom-client counters only go up: reset, then inc).
function setCounter(c: Counter<string>, labels: Record<string, string>, value: number): void {
  c.inc(labels, value);
}

/** The registry with the sentinel's metrics, and the event inputs of its histograms. */
export interface SentinelMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** A heal took this long (Sentinel.subscribeHeals). */
  healed(ms: number): void;
  /** Every target audit event (recovery-started carries the latency). */
  targetEvent(e: TargetAuditEvent): void;
  text(): Promise<string>;
}

// Why: the one place the metric names, help texts and labels are declared (a user-facing contract).
export async function createMetrics(src: MetricsSources, opts: { defaultMetrics?: boolean } = {}): Promise<SentinelMetrics> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  const vault = src.vault;
  const v = { vault };
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void): void => {
    new prom.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  };
  const counter = (name: string, help: string, labelNames: string[], collect: (c: Counter<string>) => void): void => {
    new prom.Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  };

  gauge('sentinel_vault_intact', 'Whether the last verify found the live release intact (1), or violated (0); 0 before the first verify. An empty vault waiting for its first release counts as intact.', ['vault'], (g) => g.set(v, src.lastVerify()?.ok === true ? 1 : 0));
  gauge('sentinel_vault_version', 'Version of the live release at the last verify, deploy or heal (0: none).', ['vault'], (g) => g.set(v, src.lastVerify()?.version ?? 0));
  counter('sentinel_deploys_total', 'Signed releases deployed since the daemon started.', ['vault'], (c) => setCounter(c, v, src.counters.deploys));
  counter('sentinel_rejects_total', 'Deploys refused since the daemon started (a verdict on the bundle, busy, a full disk).', ['vault'], (c) => setCounter(c, v, src.counters.rejects));
  counter('sentinel_tampers_total', 'Tampers of the live release found since the daemon started.', ['vault'], (c) => setCounter(c, v, src.counters.tampers));
  counter('sentinel_heals_total', 'Heals of the live release from its stored signed bundle since the daemon started.', ['vault'], (c) => setCounter(c, v, src.counters.heals));
  counter('sentinel_heal_failures_total', 'Heals that failed since the daemon started.', ['vault'], (c) => setCounter(c, v, src.counters.healFailures));
  counter('sentinel_audit_tampers_total', 'The audit log deleted, replaced or its +a lifted while the daemon ran.', ['vault'], (c) => setCounter(c, v, src.counters.auditTampers));
  gauge('sentinel_watchdog_healthy', 'Whether the daemon is healthy (status watchdog.healthy): alive, verified recently, nothing it guards in a bad state.', ['vault'], (g) => g.set(v, src.healthy() ? 1 : 0));
  gauge('sentinel_target_up', 'Whether the target is running (1) or starting, down, recovering, failed (0).', ['target'], (g) => {
    for (const t of src.targets()) g.set({ target: t.name }, t.state === 'running' ? 1 : 0);
  });
  counter('sentinel_target_restarts_total', 'Recovery actions taken for the target (respawn, restart) since the daemon started.', ['target'], (c) => {
    for (const t of src.targets()) setCounter(c, { target: t.name }, t.restarts);
  });
  gauge('sentinel_protection_state', 'Memory and OOM protection of the targets: 1 for the state each item is in, 0 for the others.', ['vault', 'item', 'state'], (g) => {
    const p = src.protection();
    if (p === null) return;
    for (const item of PROTECTION_ITEMS) for (const state of ITEM_STATES) g.set({ vault, item, state }, p.items[item].state === state ? 1 : 0);
  });
  const heal: Histogram<string> = new prom.Histogram({ name: 'sentinel_heal_duration_seconds', help: 'Time to heal the live release (re-stage from the signed bundle, seal, swap).', labelNames: ['vault'], buckets: HEAL_BUCKETS, registers: [registry] });
  heal.zero(v);
  const recovery: Histogram<string> = new prom.Histogram({ name: 'sentinel_recovery_latency_seconds', help: 'From a target\'s exit (kernel timestamp) or failed check to its recovery action started, by detector.', labelNames: ['target', 'detector'], buckets: RECOVERY_BUCKETS, registers: [registry] });
  // The event-loop delay monitor samples every second, not every 10 ms (prom-client's default): idle, the
  // default cost 180 ms CPU in 20 s against 22 ms without it; at 1 s, 22 ms (measured on this VM).
  if (opts.defaultMetrics !== false) prom.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });

  const lastExitVia = new Map<string, string>();
  return {
    registry,
    contentType: registry.contentType,
    healed(ms) {
      heal.observe(v, ms / 1000);
    },
    targetEvent(e) {
      const target = typeof e.target === 'string' ? e.target : null;
      if (target === null) return;
      if (e.event === 'exit' && typeof e.via === 'string') lastExitVia.set(target, e.via);
      if (e.event === 'recovery-started' && typeof e.latencyMs === 'number' && typeof e.reason === 'string') {
        recovery.observe({ target, detector: detectorOf(e.reason, lastExitVia.get(target)) }, e.latencyMs / 1000);
      }
    },
    text: () => registry.metrics(),
  };
}
