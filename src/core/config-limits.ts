// Limits of the daemon with their units in the names, in one typed place; validated by the config schema.

// Why: every timing and size bound of the daemon has one documented default and one allowed range.
export interface DaemonLimits {
  /** Period of the full vault verify (content hashes, modes, flags). */
  verifyIntervalMs: number;
  /** Period of the cheaper flag audit (lsattr/ioctl of every sealed inode, no hashing). */
  flagAuditIntervalMs: number;
  /** Quiet time after a watch event before re-verifying (coalesces a burst of events). */
  tamperDebounceMs: number;
  /** Largest control-socket request line accepted, in bytes (base64 bundles count here). */
  maxRequestBytes: number;
  /** How long a control client may take to send its whole request line. */
  requestTimeoutMs: number;
  /** How long a control client may stay silent while sending its request (or not read its reply). */
  clientIdleMs: number;
  /** Control connections served at once; a new one takes the slot of the longest-idle one, or a small reserve. */
  maxClients: number;
  /** Request bytes held in memory across all control clients at once (inline bundles go to files, not here). */
  maxBufferedBytes: number;
  /** Largest number of deploys waiting in the queue; more are refused with `busy`. */
  maxQueuedDeploys: number;
  /** Event-loop delay above which the daemon stops sending WATCHDOG=1. */
  maxEventLoopLagMs: number;
  /** A verify older than this (beyond its period) marks the vault check as stale: no WATCHDOG=1. */
  maxVerifyAgeMs: number;
  /** Inbox files must be unchanged for this long before they are picked up (chokidar awaitWriteFinish). */
  inboxStableMs: number;
  /** First wait before an inbox bundle that met back-pressure or a transient failure is tried again (doubling, at most 60 s). */
  inboxRetryMs: number;
  /** Directory depth watched below the live release root. */
  watchDepth: number;
  /** Hash worker threads are stopped after this long without hashing (idle RSS). */
  hashIdleMs: number;
  /** While the audit log cannot be written (a full disk), held records are retried this often. */
  auditRetryMs: number;
  /** Audit records held in memory at most while the log cannot be written; more are dropped and counted. */
  maxHeldAuditRecords: number;
  /** /proc poll interval for a target's main PID while no kernel exit source covers it. */
  exitPollIntervalMs: number;
  /** How often a raised retransmit alarm is re-evaluated, so a quiet port clears it. */
  retransmitCheckIntervalMs: number;
}

// Why: the documented defaults of docs/CONFIG.md.
export const DEFAULT_DAEMON_LIMITS: DaemonLimits = {
  verifyIntervalMs: 300_000,
  flagAuditIntervalMs: 30_000,
  tamperDebounceMs: 50,
  maxRequestBytes: 64 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  clientIdleMs: 5_000,
  maxClients: 64,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxQueuedDeploys: 256,
  maxEventLoopLagMs: 1_000,
  maxVerifyAgeMs: 900_000,
  inboxStableMs: 500,
  inboxRetryMs: 1_000,
  watchDepth: 32,
  hashIdleMs: 5_000,
  auditRetryMs: 1_000,
  maxHeldAuditRecords: 10_000,
  exitPollIntervalMs: 10,
  retransmitCheckIntervalMs: 250,
};

// Why: the allowed range of each limit, so a typo (ms vs s) is refused at start, not discovered in production.
export const DAEMON_LIMIT_BOUNDS: { [K in keyof DaemonLimits]: { min: number; max: number } } = {
  verifyIntervalMs: { min: 1_000, max: 86_400_000 },
  flagAuditIntervalMs: { min: 200, max: 86_400_000 },
  tamperDebounceMs: { min: 0, max: 10_000 },
  maxRequestBytes: { min: 1024, max: 1024 * 1024 * 1024 },
  requestTimeoutMs: { min: 100, max: 600_000 },
  clientIdleMs: { min: 100, max: 600_000 },
  maxClients: { min: 1, max: 10_000 },
  maxBufferedBytes: { min: 1024 * 1024, max: 1024 * 1024 * 1024 },
  maxQueuedDeploys: { min: 1, max: 100_000 },
  maxEventLoopLagMs: { min: 10, max: 60_000 },
  maxVerifyAgeMs: { min: 1_000, max: 7 * 86_400_000 },
  inboxStableMs: { min: 0, max: 60_000 },
  inboxRetryMs: { min: 100, max: 60_000 },
  watchDepth: { min: 0, max: 256 },
  hashIdleMs: { min: 0, max: 3_600_000 },
  auditRetryMs: { min: 100, max: 60_000 },
  maxHeldAuditRecords: { min: 100, max: 1_000_000 },
  exitPollIntervalMs: { min: 1, max: 10_000 },
  retransmitCheckIntervalMs: { min: 10, max: 60_000 },
};

// Why: the systemd watchdog accepts WatchdogSec between these; we ping at half the period.
export const WATCHDOG_USEC_BOUNDS = { min: 100_000, max: 3_600_000_000 } as const;
