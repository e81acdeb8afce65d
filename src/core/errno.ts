// The one table from errno names (a system error's `code`: 'ENOENT', 'EPERM', ...) to the product's
// error codes, so the same failure gets the same code whichever adapter met it
// (docs/ARCHITECTURE.md#errors-and-the-errno-map).
import { SentinelError, messageOf } from './errors.js';
import type { ErrorCode } from './errors.js';

/**
 * What the failing call was doing, where that changes what an errno means. Each context other than
 * 'file' (the default) overrides only the few errno values whose meaning it changes.
 */
export type ErrnoContext =
  /** open/read/write/rename/mkdir/readdir of an ordinary path. */
  | 'file'
  /** FS_IOC_GETFLAGS/SETFLAGS (chattr/lsattr): the filesystem may not know +i; symlinks carry no flags. */
  | 'inode-flags'
  /** opening one entry of a release tree with O_NOFOLLOW to hash it: anything but a regular file is refused. */
  | 'tree-entry'
  /** reading the source tree of a release being signed: a file the signer cannot read is an I/O failure of the source. */
  | 'source-tree'
  /** cgroupfs and /proc files: a value the kernel refuses there means the feature is absent. */
  | 'kernel-interface'
  /** connecting to a Unix socket: nobody listening (no socket file, or refused) means the service is absent. */
  | 'connect'
  /** loading or attaching a BPF object: a missing BTF, tracepoint or program, or a verifier refusal, means the kernel cannot do it. */
  | 'bpf';

const BASE: Readonly<Record<string, ErrorCode>> = {
  ENOENT: 'not-found',
  ENOTDIR: 'not-found',
  ESRCH: 'not-found',
  EPERM: 'not-permitted',
  EACCES: 'not-permitted',
  EROFS: 'not-permitted',
  EEXIST: 'exists',
  EOPNOTSUPP: 'unavailable',
  ENOTSUP: 'unavailable',
  ENOTTY: 'unavailable',
  ENOSYS: 'unavailable',
  ECONNREFUSED: 'unavailable',
};

// Only the errno values whose meaning a context changes; everything else reads BASE.
const BY_CONTEXT: Readonly<Record<ErrnoContext, Readonly<Record<string, ErrorCode>>>> = {
  file: {},
  'inode-flags': {
    EOPNOTSUPP: 'no-immutable-support',
    ENOTSUP: 'no-immutable-support',
    ENOTTY: 'no-immutable-support',
    EINVAL: 'no-immutable-support',
    ELOOP: 'bad-path',
  },
  'tree-entry': {
    ELOOP: 'bad-path',
    EOPNOTSUPP: 'bad-path',
    ENOTSUP: 'bad-path',
    ENOTREG: 'bad-path',
    EISDIR: 'bad-path',
  },
  'source-tree': {
    EACCES: 'io',
    EPERM: 'io',
  },
  'kernel-interface': {
    EINVAL: 'unavailable',
  },
  connect: {
    ENOENT: 'unavailable',
  },
  bpf: {
    ENOENT: 'unavailable',
    ESRCH: 'unavailable',
    EINVAL: 'unavailable',
    E2BIG: 'unavailable',
    EBADF: 'unavailable',
  },
};

// Why: one answer per errno; a context names the few cases where the call gives an errno another
// meaning (EINVAL from FS_IOC_SETFLAGS is "no +i here", from a cgroup file "not supported").
export function codeForErrno(errno: string | undefined, context: ErrnoContext = 'file'): ErrorCode {
  if (errno === undefined) return 'io';
  return BY_CONTEXT[context][errno] ?? BASE[errno] ?? 'io';
}

// Why: Node's and the addon's system errors carry the errno name in `code`; anything else has none.
export function errnoOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  const code = e.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

// Why: the one way a failed system call becomes a SentinelError — `what` says what was being done,
// `where` the path; the errno joins the message and its code comes from the table above. A
// SentinelError passes through unchanged (the inner call already named the failure).
export function ioError(e: unknown, what: string, where: string, context: ErrnoContext = 'file'): SentinelError {
  if (e instanceof SentinelError) return e;
  const errno = errnoOf(e);
  return new SentinelError(codeForErrno(errno, context), `${what} (${errno ?? messageOf(e)})`, { where, cause: e });
}
