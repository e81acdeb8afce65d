// The daemon's other duties (eBPF target recovery, memory/OOM protection) behind one small interface.
import type { Logger } from '../adapters/logger.js';
import type { DaemonConfig } from './config.js';
import type { AuditRecorder } from './audit-recorder.js';
import { TargetSupervisor } from './targets/index.js';
import { ProtectionManager } from './protection/index.js';

// Why: the composition root starts, stops and reports every duty the same way (STATUS=, `status`, watchdog health).
export interface DaemonComponent {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): unknown;
  statusLine(): string;
  /** A reason when the component itself has failed (withholds watchdog pings), else null. */
  failed?(): string | null;
}

// Why: wires TargetSupervisor and ProtectionManager; with no targets there is nothing to recover or protect.
export function buildComponents(config: DaemonConfig, deps: { log: Logger; audit: AuditRecorder }): Promise<DaemonComponent[]> {
  if (config.targets.length === 0) return Promise.resolve([]);
  const targets = new TargetSupervisor(config.targets, {
    log: deps.log.child({ component: 'targets' }),
    audit: (e) => deps.audit.record('recovery', { ...e }),
    pollIntervalMs: config.limits.exitPollIntervalMs,
    retransmitCheckIntervalMs: config.limits.retransmitCheckIntervalMs,
  });
  const protection = new ProtectionManager(config.protection, {
    pids: () => targets.status().flatMap((s) => (s.pid === null ? [] : [s.pid])),
    log: deps.log.child({ component: 'protection' }),
    audit: (e) => {
      const { kind: _kind, at: _at, ...fields } = e;
      deps.audit.record('protection', fields);
    },
  });
  return Promise.resolve([
    { name: 'targets', start: () => targets.start(), stop: () => targets.stop(), status: () => targets.status(), statusLine: () => targets.statusLine() },
    { name: 'protection', start: () => protection.start(), stop: () => protection.stop(), status: () => protection.status(), statusLine: () => protection.statusLine() },
  ]);
}
