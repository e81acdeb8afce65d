// The metrics part of the daemon: the registry (metrics.ts) and its listener (metrics-server.ts), started after the
// control socket and before READY=1. main.ts imports this module only when `metrics.listen` is set.
import { SentinelError } from '../core/errors.js';
import { parseMetricsListen } from '../core/metrics-listen.js';
import type { Logger } from '../adapters/logger.js';
import type { DaemonConfig } from './config.js';
import type { DaemonComponent, DaemonPart } from './components.js';
import type { Sentinel } from './sentinel.js';
import type { TargetStatus } from './targets/index.js';
import type { ProtectionStatus } from './protection/index.js';
import { createMetrics, type SentinelMetrics } from './metrics.js';
import { MetricsServer } from './metrics-server.js';

export interface MetricsPartDeps {
  log: Logger;
  sentinel: Sentinel;
  components: readonly DaemonComponent[];
  healthy(): boolean;
}

// Why: one part to start and stop with the others; `metrics` is handed back so target events reach the histogram.
export async function metricsPart(config: DaemonConfig, deps: MetricsPartDeps): Promise<{ part: DaemonPart; metrics: SentinelMetrics; server: MetricsServer }> {
  const value = config.metrics.listen;
  const listen = value === undefined ? null : parseMetricsListen(value);
  if (listen === null || 'error' in listen) throw new SentinelError('config', `metrics.listen: ${listen === null ? 'not set' : listen.error}`, { where: 'metrics.listen' });
  const component = (name: string): DaemonComponent | undefined => deps.components.find((c) => c.name === name);
  const metrics = await createMetrics({
    vault: config.vault.path,
    counters: deps.sentinel.counters,
    lastVerify: () => deps.sentinel.lastVerify,
    targets: () => (component('targets')?.status() as TargetStatus[] | undefined) ?? [],
    protection: () => (component('protection')?.status() as ProtectionStatus | undefined) ?? null,
    healthy: () => deps.healthy(),
  });
  deps.sentinel.subscribeHeals((ms) => metrics.healed(ms));
  const server = new MetricsServer({ listen, ...(config.metrics.group !== undefined ? { group: config.metrics.group } : {}), log: deps.log, contentType: metrics.contentType, render: () => metrics.text() });
  return { part: { name: 'metrics', start: () => server.listen(), stop: () => server.close() }, metrics, server };
}
