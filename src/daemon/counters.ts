// The daemon's counters in one place: every component increments these, `status` and STATUS= read them.

// Why: one object for what an operator counts (status, metrics), instead of a few fields per component.
export interface DaemonCounters {
  deploys: number;
  /** Every deploy that did not go live, whatever the reason (a verdict on the bundle, busy, a full disk). */
  rejects: number;
  /** `rejects` by error code. */
  rejectsByCode: Record<string, number>;
  tampers: number;
  heals: number;
  healFailures: number;
  verifies: number;
  /** Audit records whose append failed (each retry counts). */
  auditWriteFailures: number;
  /** Audit records dropped because too many were held while the log could not be written. */
  auditRecordsDropped: number;
  /** The audit log deleted, replaced or its +a lifted while the daemon ran. */
  auditTampers: number;
  /** Inbox attempts that met back-pressure or a transient failure (busy, a full disk) and left the bundle waiting. */
  inboxDeferred: number;
}

// Why: a fresh set at start; counters are never reset while the daemon runs.
export function newCounters(): DaemonCounters {
  return { deploys: 0, rejects: 0, rejectsByCode: {}, tampers: 0, heals: 0, healFailures: 0, verifies: 0, auditWriteFailures: 0, auditRecordsDropped: 0, auditTampers: 0, inboxDeferred: 0 };
}

// Why: a refused deploy counts once in the total and once under its code.
export function countReject(c: DaemonCounters, code: string): void {
  c.rejects++;
  c.rejectsByCode[code] = (c.rejectsByCode[code] ?? 0) + 1;
}
