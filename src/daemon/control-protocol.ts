// The control socket's wire format: one JSON object per line each way (docs/DAEMON.md "Control socket").
import { SentinelError, type ErrorCode, messageOf } from '../core/errors.js';
import { SERVICE_EVENT_FIELDS, serviceEventProblems, type ServiceEvent } from './service-event.js';
import type { Upload } from './uploads.js';

export type ControlRequest =
  | { op: 'status'; id?: string }
  | { op: 'reload'; id?: string }
  | { op: 'verify'; id?: string }
  | { op: 'heal'; id?: string }
  | { op: 'deploy'; id?: string; bundlePath: string }
  | { op: 'deploy'; id?: string; bundleBase64: string }
  | ({ op: 'service-event'; id?: string } & ServiceEvent)
  | { op: 'target-reset'; id?: string; name: string }
  | { op: 'trace'; id?: string; target?: string };

/** A request as the daemon acts on it: an inline bundle arrives as a file the server streamed it into. */
export type ControlCommand = Exclude<ControlRequest, { bundleBase64: string }> | { op: 'deploy'; id?: string; upload: Upload };

export type ControlReply =
  | { ok: true; op: string; id?: string; result: unknown }
  | { ok: false; op?: string; id?: string; error: { code: ErrorCode; message: string; where?: string } };

export const CONTROL_OPS = ['status', 'verify', 'deploy', 'heal', 'reload', 'service-event', 'target-reset', 'trace'] as const;

// Why: a request line is untrusted input; every bad field is named before anything acts on it.
export function assertControlRequest(value: unknown): asserts value is ControlRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SentinelError('usage', 'request must be a JSON object', { where: 'request' });
  const v = value as Record<string, unknown>;
  const bad: string[] = [];
  if (typeof v.op !== 'string' || !(CONTROL_OPS as readonly string[]).includes(v.op)) bad.push(`op (one of ${CONTROL_OPS.join(', ')})`);
  if (v.id !== undefined && (typeof v.id !== 'string' || v.id.length > 128)) bad.push('id (string of at most 128 characters)');
  const allowed = new Set(['op', 'id', ...(v.op === 'deploy' ? ['bundlePath', 'bundleBase64'] : []), ...(v.op === 'service-event' ? SERVICE_EVENT_FIELDS : []), ...(v.op === 'target-reset' ? ['name'] : []), ...(v.op === 'trace' ? ['target'] : [])]);
  for (const k of Object.keys(v)) if (!allowed.has(k)) bad.push(`${k} (unknown field)`);
  if (v.op === 'deploy') {
    const hasPath = v.bundlePath !== undefined;
    const hasB64 = v.bundleBase64 !== undefined;
    if (hasPath === hasB64) bad.push('bundlePath | bundleBase64 (exactly one is required)');
    if (hasPath && (typeof v.bundlePath !== 'string' || !v.bundlePath.startsWith('/'))) bad.push('bundlePath (absolute path)');
    if (hasB64 && (typeof v.bundleBase64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.bundleBase64))) bad.push('bundleBase64 (base64 text)');
  }
  if (v.op === 'service-event') bad.push(...serviceEventProblems(v));
  if (v.op === 'target-reset' && (typeof v.name !== 'string' || !/^[A-Za-z0-9_.@-]{1,256}$/.test(v.name))) bad.push('name (a target name)');
  if (v.op === 'trace' && v.target !== undefined && (typeof v.target !== 'string' || !/^[A-Za-z0-9_.@-]{1,256}$/.test(v.target))) bad.push('target (a target name)');
  if (bad.length > 0) throw new SentinelError('usage', `bad request field(s): ${bad.join(', ')}`, { where: 'request' });
}

// Why: the streaming reader gives the fields it kept and the file the inline bundle went to; the same checks apply.
export function commandOf(fields: Record<string, unknown>, upload: Upload | null): ControlCommand {
  const value: Record<string, unknown> = upload === null ? { ...fields } : { ...fields, bundleBase64: '' };
  assertControlRequest(value);
  if (upload !== null && value.op === 'deploy') return { op: 'deploy', ...(value.id !== undefined ? { id: value.id } : {}), upload };
  return value as ControlCommand;
}

// Why: every failure crosses the socket in the same shape, so clients can map the code to an exit code.
export function errorReply(e: unknown, op?: string, id?: string): ControlReply {
  const err = e instanceof SentinelError ? e : new SentinelError('internal', messageOf(e));
  return { ok: false, ...(op !== undefined ? { op } : {}), ...(id !== undefined ? { id } : {}), error: { code: err.code, message: err.message, ...(err.where !== undefined ? { where: err.where } : {}) } };
}
