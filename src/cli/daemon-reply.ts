// Replies from the daemon's control socket, turned into the same one-line errors the direct path gives.
import { ENVIRONMENT_CODES, INTEGRITY_CODES, SentinelError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';

/** One JSON reply line of the control socket. */
export type DaemonReply<T> = { ok?: boolean; result?: T; error?: { code?: string; message?: string; where?: string } };

const knownCodes = new Set<string>([...INTEGRITY_CODES, ...ENVIRONMENT_CODES]);

// The daemon's error reply as a SentinelError; a code this CLI does not know becomes 'internal'.
export function daemonError(error: DaemonReply<unknown>['error'], socket: string, fallback: string): SentinelError {
  const code: ErrorCode = error?.code !== undefined && knownCodes.has(error.code) ? (error.code as ErrorCode) : 'internal';
  return new SentinelError(code, error?.message ?? fallback, { where: error?.where ?? socket });
}
