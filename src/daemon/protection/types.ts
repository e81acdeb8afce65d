// The vocabulary of memory and OOM protection: item states, status, repairs, the report of a pass,
// the audit event, what the manager needs from the daemon, and the seam of the two slice modes.
import type { ErrorCode } from '../../core/errors.js';
import type { CgroupLayout } from '../../adapters/cgroup-layout.js';

/** applied: in force and verified; refused: the host said no; unsupported: the host cannot; ineffective: set but capped above; off: not configured. */
export type ItemState = 'applied' | 'refused' | 'unsupported' | 'ineffective' | 'off' | 'pending';

// One protection and whether it holds, with the reason when it does not (no silent success).
export interface ProtectionItem {
  state: ItemState;
  /** Short reason for the STATUS= line, e.g. "no CAP_SYS_RESOURCE". */
  short?: string;
  /** The full reason, for status --json, doctor and the log. */
  reason?: string;
  code?: ErrorCode;
}

/** The memory files of the slice the manager sets. */
export type MemoryFile = 'memory.low' | 'memory.min';

/** The five protections, as status() reports them. */
export interface ProtectionItems {
  slice: ProtectionItem;
  memoryLow: ProtectionItem;
  memoryMin: ProtectionItem;
  oom: ProtectionItem;
  expendable: ProtectionItem;
}

// A process the manager protects, as last seen.
export interface ProtectedProcess {
  pid: number;
  comm: string;
  oomScoreAdj: number | null;
  /** cgroup2 path as /proc/PID/cgroup shows it, null without cgroup2. */
  cgroup: string | null;
  inSlice: boolean | null;
}

/** An expendable process found and scored. */
export interface ExpendableProcess {
  pid: number;
  comm: string;
  oomScoreAdj: number;
}

// What `status --json` and `doctor` show about protection.
export interface ProtectionStatus {
  hierarchy: CgroupLayout['kind'] | 'unknown';
  systemd: boolean;
  slice: string;
  sliceDir: string | null;
  items: ProtectionItems;
  /** The score actually in force on protected processes when the configured one was refused. */
  effectiveOomScoreAdj: number | null;
  processes: ProtectedProcess[];
  expendables: ExpendableProcess[];
  lastCheck: string | null;
}

/** One thing put back: a drifted score, a process moved out, a memory setting changed. */
export interface ProtectionRepair {
  pid?: number;
  what: 'oom_score_adj' | 'cgroup' | 'memory.low' | 'memory.min' | 'expendable';
  from: string;
  to: string;
  /** drift: we had applied it and someone changed it; initial: first placement of a new process. */
  kind: 'drift' | 'initial';
}

// The result of one check(): what was repaired and what could not be.
export interface ProtectionReport {
  at: string;
  repairs: ProtectionRepair[];
  problems: string[];
  status: ProtectionStatus;
}

/** pino-compatible logger subset. */
export interface ProtectionLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

// An audit-log entry for applied, refused and repaired protection.
export interface ProtectionAuditEvent {
  kind: 'protection';
  action: 'apply' | 'repair' | 'refused';
  what: string;
  pid?: number;
  detail: string;
  at: string;
}

// What the manager needs from the daemon: the targets' PIDs, a logger, the audit log, a clock.
export interface ProtectionDeps {
  /** Main PIDs of the protected targets, from the target supervisor. */
  pids(): number[];
  log: ProtectionLog;
  audit?(event: ProtectionAuditEvent): void;
  /** Wall clock for report times and the full re-check period (default: the system clock). */
  now?(): Date;
}

/** Records a protection event in the audit log (what, detail, and the process it concerns). */
export type ProtectionAudit = (action: ProtectionAuditEvent['action'], what: string, detail: string, pid?: number) => void;

// Why: the manager works with the slice the same way whoever owns it: systemd (a slice unit, processes
// left where their unit put them) or the sentinel itself (a cgroup directory it creates and fills).
export interface SliceMode {
  /** systemd owns the slice: unit processes are not moved, memory goes through set-property. */
  readonly systemd: boolean;
  /** The slice's cgroup directory once set up, null when it could not be. */
  readonly sliceDir: string | null;
  /** The sentinel may move processes into the slice. */
  readonly mayMove: boolean;
  /** Create, start or adopt the slice. */
  setup(): Promise<ProtectionItem>;
  /** Full pass: make the slice again if someone removed it; true when it had to. */
  restore(): Promise<boolean>;
  /** Set memory.low / memory.min on the slice (throws a SentinelError when refused). */
  writeMemory(file: MemoryFile, bytes: number): Promise<void>;
  /** Move a process into the slice, read back. */
  move(pid: number): Promise<void>;
  /** Why protected processes outside the slice stay there (for the slice item). */
  outside(where: string[]): { reason: string; short: string };
  /** At stop: remove a slice the sentinel made itself, if it is empty. */
  release(): Promise<void>;
}

/** What this host can do for protection, without changing anything (for `sentinel doctor`). */
export interface ProtectionSupport {
  hierarchy: CgroupLayout['kind'];
  cgroup2Mount: string | null;
  systemd: boolean;
  v2MemoryController: boolean;
  v1MemoryController: string | null;
  memoryRecursiveProt: boolean;
  capSysResource: boolean;
  /** One line per thing that will not be protected, with the reason. */
  limits: string[];
}
