// One error class for the whole product: a string-union `code` the CLI maps to an exit code,
// a `where` (file, path, field) so every failure can be printed as one line saying what and where.

/** Integrity failures and rejections: exit code 1. */
export const INTEGRITY_CODES = [
  'malformed-bundle', // bad magic, bad framing, non-canonical manifest, bad JSON
  'truncated', // bundle or payload shorter than its manifest says
  'trailing-data', // payload longer than its manifest says (more files than listed)
  'too-large', // a size limit was exceeded while reading
  'bad-path', // traversal, absolute, duplicate, device/fifo/socket, setuid/setgid, escaping symlink
  'bad-signature', // a signature by a trusted key does not verify
  'untrusted-key', // no signature from any trusted key
  'threshold', // fewer distinct trusted signers than the policy's threshold
  'rollback', // version not greater than the highest version this vault has seen
  'expired', // bundle expiry is in the past (against the injected clock)
  'wrong-vault', // bundle is bound to another vault id
  'hash-mismatch', // file content does not match its manifest SHA-256
  'size-mismatch', // file size does not match its manifest size
  'tampered', // live tree differs from its signed manifest (missing, extra, changed, mode, type)
  'unsealed', // a file or directory that must be +i is not
  'insecure-path', // a vault directory (or one on the way to it) not owned by root, or writable by group or others
  'audit-chain', // audit log hash chain broken
] as const;

/** Usage and environment errors: exit code 2. */
export const ENVIRONMENT_CODES = [
  'usage', // bad arguments
  'not-found', // missing file, key, vault
  'exists', // refusing to overwrite
  'not-permitted', // EPERM/EACCES, missing capability
  'no-immutable-support', // filesystem without FS_IMMUTABLE_FL (EOPNOTSUPP/ENOTTY/EINVAL from the flags ioctl)
  'io', // other I/O failure (EIO, ENOSPC, unreadable source file)
  'config', // invalid configuration file
  'busy', // another deploy holds the vault lock
  'unavailable', // a needed tool or kernel feature is absent
  'internal', // a bug: an invariant the code relies on did not hold
] as const;

// Why: a code is a closed union, so the compiler catches a misspelt code and the CLI's exit-code
// mapping is total (docs/ARCHITECTURE.md#errors-and-the-errno-map).
export type IntegrityCode = (typeof INTEGRITY_CODES)[number];
export type EnvironmentCode = (typeof ENVIRONMENT_CODES)[number];
export type ErrorCode = IntegrityCode | EnvironmentCode;

// Why: `where` is half of the one stderr line; `cause` keeps the system error for --debug.
export interface SentinelErrorOptions {
  /** What the error is about: a file path, a manifest path, a config field. */
  where?: string;
  cause?: unknown;
}

// Why: every failure is one coded error, so callers and tests decide on `code`, never on message text.
export class SentinelError extends Error {
  override readonly name = 'SentinelError';
  readonly code: ErrorCode;
  readonly where: string | undefined;

  constructor(code: ErrorCode, message: string, options: SentinelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.where = options.where;
  }

  /** The one line printed on stderr: `sentinel: <code>: <message> (<where>)`. */
  toLine(): string {
    return `${this.code}: ${this.message}${this.where !== undefined ? ` (${this.where})` : ''}`;
  }
}

const integrity = new Set<string>(INTEGRITY_CODES);

/** Exit codes (README.md "Commands"): 1 rejected / integrity violation, 2 usage or environment error. */
export function exitCodeFor(code: ErrorCode): 1 | 2 {
  return integrity.has(code) ? 1 : 2;
}

// Why: the text of anything thrown, for a log line or a problem report (a thrown value need not be an Error).
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Why: narrowing with an optional code, so callers and tests ask "is this a `busy`?" in one call.
export function isSentinelError(e: unknown, code?: ErrorCode): e is SentinelError {
  return e instanceof SentinelError && (code === undefined || e.code === code);
}
