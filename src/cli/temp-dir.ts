// The CLI's temporary directories (the demo's vault, the bundle sign-and-deploy signs) are made under TMPDIR
// (os.tmpdir()): a TMPDIR the command cannot use is the operator's environment to fix, so it is said as one line
// naming TMPDIR and its value and what to do, not as Node's raw `ENOENT: …, mkdtemp '…'`.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SentinelError, type ErrorCode } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';

/** Where the temporary directories go, as the one error line names it: `TMPDIR=<value>`, or the default when TMPDIR is unset. */
export function tmpdirWhere(): string {
  const set = process.env.TMPDIR;
  return set !== undefined && set !== '' ? `TMPDIR=${set}` : `TMPDIR unset: ${tmpdir()}`;
}

const FIX = 'set TMPDIR to a directory root can write on a filesystem with room, or unset TMPDIR for /tmp';

// Why: each errno a mkdtemp under TMPDIR meets said in words, with the product's code for it (exit 2 for all).
const TMPDIR_ERRORS: Readonly<Record<string, [ErrorCode, string]>> = {
  ENOENT: ['not-found', 'the temporary directory does not exist'],
  ENOTDIR: ['not-found', 'the temporary directory is not a directory'],
  EACCES: ['not-permitted', 'cannot create a directory in the temporary directory (not permitted)'],
  EPERM: ['not-permitted', 'cannot create a directory in the temporary directory (not permitted)'],
  EROFS: ['not-permitted', 'the temporary directory is on a read-only filesystem'],
  ENOSPC: ['io', 'no space left in the temporary directory'],
  EDQUOT: ['io', 'disk quota exceeded in the temporary directory'],
  ELOOP: ['not-found', 'the temporary directory is a symlink loop'],
};

/** A fresh directory under TMPDIR named `<prefix>XXXXXX`; a TMPDIR that cannot take it is one clear SentinelError. */
export async function makeTempDir(prefix: string): Promise<string> {
  const base = tmpdir();
  try {
    return await mkdtemp(join(base, prefix));
  } catch (e) {
    const errno = errnoOf(e) ?? 'EIO';
    const [code, what] = TMPDIR_ERRORS[errno] ?? ['io', `cannot create a directory in the temporary directory (${errno})`];
    throw new SentinelError(code, `${what}: ${FIX}`, { where: tmpdirWhere(), cause: e });
  }
}

/** The errno at the root of a failure (a SentinelError keeps the system error as its cause). */
export function rootErrno(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const errno = errnoOf(c);
    if (errno !== undefined) return errno;
  }
  return undefined;
}
