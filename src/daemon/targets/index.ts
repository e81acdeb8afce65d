// Target recovery, as the rest of the daemon imports it: the supervisor, its config schema and its
// vocabulary. The parts: types, detection, launchers, triggers, recovery, supervisor (docs/EBPF.md#pieces).
export { TargetSupervisor } from './supervisor.js';
export { parseTargets, targetSchema, type TargetSpec, type TargetSpecInput } from './spec.js';
export { RETRANSMIT_READ_INTERVAL_MS, RETRANSMIT_RECORD_GAP_MS, engineSources } from './engine-sources.js';
export type { TargetKind } from './launchers.js';
export type { DetectedExit } from './detection.js';
export type {
  DetectionMode,
  ExitSource,
  KernelExit,
  KernelSources,
  RetransmitHit,
  RetransmitSource,
  SourceHandlers,
  SourceStats,
  TargetAuditEvent,
  TargetState,
  TargetStatus,
  TargetSupervisorDeps,
} from './types.js';
