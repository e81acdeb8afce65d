// The `service-event` control request: a unit's stop hook (omnimind_sentinel.graceful_restart, for a
// unit no target watches) reports how a service ended — "backend hung: watchdog" with the thread
// stacks from the journal — and the daemon records it in the audit log; a unit target's watchdog
// timeout is recorded by the sentinel itself in the same shape (targets/watchdog-evidence.ts,
// docs/BACKEND.md#graceful-restart).
import { SentinelError } from '../core/errors.js';

/** Bounds of one event: what a faulthandler dump of a few dozen threads needs, and no more. */
export const SERVICE_EVENT_LIMITS = { evidenceLines: 400, lineChars: 1000, evidenceChars: 65_536, messageChars: 200, fieldChars: 200 } as const;

export interface ServiceEvent {
  /** The unit that ended, e.g. omnimind-backend.service. */
  unit: string;
  /** systemd's $SERVICE_RESULT: success, exit-code, signal, core-dump, watchdog, timeout, ... */
  result: string;
  /** One line, e.g. "backend hung: watchdog". */
  message: string;
  /** Journal lines of the invocation (the thread stacks), possibly empty. */
  evidence: string[];
  exitCode?: string;
  exitStatus?: string;
  invocationId?: string;
  /** Why `evidence` is empty or partial. */
  evidenceNote?: string;
}

export const SERVICE_EVENT_FIELDS = ['unit', 'result', 'message', 'evidence', 'exitCode', 'exitStatus', 'invocationId', 'evidenceNote'] as const;

const oneLine = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && !/[\n\r\0]/.test(v);

// Why: the fields of a request line are untrusted; each bad one is named (the caller adds them to its usage error).
export function serviceEventProblems(v: Record<string, unknown>): string[] {
  const L = SERVICE_EVENT_LIMITS;
  const bad: string[] = [];
  if (typeof v.unit !== 'string' || !/^[A-Za-z0-9:_.@\\-]{1,256}$/.test(v.unit)) bad.push('unit (a unit name)');
  if (typeof v.result !== 'string' || !/^[a-z][a-z-]{0,31}$/.test(v.result)) bad.push('result ($SERVICE_RESULT, e.g. watchdog)');
  if (!oneLine(v.message, L.messageChars)) bad.push(`message (one line of at most ${L.messageChars} characters)`);
  const ev = v.evidence;
  if (!Array.isArray(ev) || ev.length > L.evidenceLines || !ev.every((l) => typeof l === 'string' && l.length <= L.lineChars && !/[\n\r\0]/.test(l))) {
    bad.push(`evidence (at most ${L.evidenceLines} lines of at most ${L.lineChars} characters)`);
  } else if ((ev as string[]).reduce((n, l) => n + l.length, 0) > L.evidenceChars) bad.push(`evidence (at most ${L.evidenceChars} characters in all)`);
  for (const k of ['exitCode', 'exitStatus', 'evidenceNote'] as const) if (v[k] !== undefined && !oneLine(v[k], L.fieldChars)) bad.push(`${k} (one line of at most ${L.fieldChars} characters)`);
  if (v.invocationId !== undefined && (typeof v.invocationId !== 'string' || !/^[0-9a-f]{32}$/.test(v.invocationId))) bad.push('invocationId (32 hex digits)');
  return bad;
}

// Why: the audit line of a reported event; the target that names this unit, if any, is named too.
export function serviceEventAuditFields(e: ServiceEvent, target: string | null): Record<string, unknown> {
  return { event: 'service-event', source: 'unit hook', ...(target === null ? {} : { target }), ...e };
}

// Why: tests and callers get the same refusal as the socket's.
export function assertServiceEvent(v: Record<string, unknown>): asserts v is Record<string, unknown> & ServiceEvent {
  const bad = serviceEventProblems(v);
  if (bad.length > 0) throw new SentinelError('usage', `bad request field(s): ${bad.join(', ')}`, { where: 'request' });
}
