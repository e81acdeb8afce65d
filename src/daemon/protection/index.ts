// Memory and OOM protection, as the rest of the daemon (and doctor) imports it. The parts: types,
// policy (pure), the two slice modes (systemd, cgroupfs), memory, scores, manager, probe.
export { ProtectionManager } from './manager.js';
export { probeProtectionSupport } from './probe.js';
export { protectionSchema, parseMemorySize } from './spec.js';
export type { ProtectionSpec, ProtectionSpecInput } from './spec.js';
export type {
  ItemState,
  ProtectedProcess,
  ProtectionAuditEvent,
  ProtectionDeps,
  ProtectionItem,
  ProtectionLog,
  ProtectionRepair,
  ProtectionReport,
  ProtectionStatus,
  ProtectionSupport,
} from './types.js';
