// The daemon's other duties (eBPF target recovery, memory/OOM protection) behind one small interface.
import type { Logger } from '../adapters/logger.js';
import type { DaemonConfig } from './config.js';
import type { AuditRecorder } from './audit-recorder.js';

// Why: the composition root starts, stops and reports every duty the same way (STATUS=, `status`, watchdog health).
export interface DaemonComponent {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): unknown;
  statusLine(): string;
  /** A reason when the component has failed (withholds watchdog pings), else null. */
  failed?(): string | null;
}

// Why: the seam where TargetSupervisor (src/daemon/targets) and ProtectionManager (src/daemon/protection) are wired in.
export function buildComponents(config: DaemonConfig, deps: { log: Logger; audit: AuditRecorder }): Promise<DaemonComponent[]> {
  void config;
  void deps;
  return Promise.resolve([]);
}
