// Reading a small file named by an operator or kept by the vault (a key file, vault.json,
// highest.json) without ever blocking on it: opened O_NONBLOCK, checked with fstat to be a regular
// file of bounded size before a byte is read, so a fifo, a device or a huge file is one clear error.
import { closeSync, constants, fstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { open, readdir, readlink } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';

const EMPTY = new Uint8Array(0);

// Set by the plain `vault status` runner (src/cli/plain-status.ts), a process with nothing else to
// do while it reads: the vault's small files, `current`'s link and the releases/ listing are then
// read with blocking calls on the main thread, the same calls and checks in the same order, instead
// of a round trip to the thread pool for each step (5 per file) and node:fs/promises (its first
// use loads readline and the fs watchers, about 1 ms). Off everywhere else (the daemon's loop must
// never block on a file).
let blocking = false;

/** Whether reads block (see above); the plain status runner turns it on. */
export function setBlockingReads(on: boolean): void {
  blocking = on;
}

// Why: the names of a directory (releases/) through whichever way the process reads.
export function readNames(path: string): Promise<string[]> {
  return blocking ? Promise.resolve().then(() => readdirSync(path)) : readdir(path);
}

// Why: a symlink's target (`current`) through whichever way the process reads.
export function readLinkTarget(path: string): Promise<string> {
  return blocking ? Promise.resolve().then(() => readlinkSync(path)) : readlink(path);
}

/** A descriptor's calls, from the thread pool (a FileHandle) or blocking (a plain fd). */
interface Held {
  stat(): Promise<{ isFile(): boolean; mode: number; size: number; uid: number; dev: number; ino: number }>;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

function openHeld(path: string, flags: number): Promise<Held> {
  if (!blocking) return open(path, flags);
  return Promise.resolve().then(() => {
    const fd = openSync(path, flags);
    return {
      stat: () => Promise.resolve().then(() => fstatSync(fd)),
      read: (buf, offset, length, position) => Promise.resolve().then(() => ({ bytesRead: readSync(fd, buf, offset, length, position) })),
      close: () => Promise.resolve().then(() => closeSync(fd)),
    };
  });
}

/** Largest key file read: a key line and a few comment lines, never megabytes. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

export interface SmallFileOptions {
  /** What the file is, for messages ("public key", "vault.json"). */
  what: string;
  maxBytes: number;
  /** Code for a path that exists but is not a regular file or is too large (default `usage`). */
  badFileCode?: ErrorCode;
  /** Where to report (default: the path). */
  where?: string;
  /**
   * Bytes placed right before the file's bytes in the same buffer (the result is a view after
   * them): a caller that needs prefix + content, as the signature input does, then copies nothing.
   */
  prefix?: Uint8Array;
  /**
   * The vault's own files: a symlink as the last component is refused (O_NOFOLLOW), with `badFileCode`
   * and one line saying so, never followed (docs/SECURITY.md#symlinks-in-the-vault). A file an operator
   * names (a key file) leaves this off: following a symlink is then the operator's choice.
   */
  noFollow?: boolean;
  /**
   * Checks the opened file's own fstat before a byte is read (throw to refuse): a rule about who owns the
   * file then holds for the bytes read, not for whatever the path named a moment before.
   */
  accept?: (st: { mode: number; uid: number; dev: number; ino: number }) => void;
}

// Why: one wording for a file type that is refused, wherever an error names it; `otherwise` is the
// words for a type with no name of its own (what a caller expects decides them).
export function typeName(mode: number, otherwise = 'not a regular file'): string {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFIFO:
      return 'a fifo';
    case constants.S_IFDIR:
      return 'a directory';
    case constants.S_IFSOCK:
      return 'a socket';
    case constants.S_IFCHR:
    case constants.S_IFBLK:
      return 'a device';
    default:
      return otherwise;
  }
}

/** The file's bytes, which must be exactly `size` long: one byte more means it grew while being read. */
async function readExactly(fh: Held, size: number, what: string, where: string, prefix: Uint8Array): Promise<Buffer> {
  const at = prefix.length;
  const buf = Buffer.alloc(at + size + 1);
  buf.set(prefix, 0);
  let n = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, at + n, size + 1 - n, n);
    if (bytesRead === 0) break;
    n += bytesRead;
    if (n > size) throw new SentinelError('io', `${what} changed while it was read`, { where });
  }
  return buf.subarray(at, at + n);
}

// Why: `--trust` naming a fifo must not hang `vault init`; a file is checked before it is read.
export async function readSmallFile(path: string, opts: SmallFileOptions): Promise<string> {
  return (await readSmallFileBytes(path, opts)).toString('utf8');
}

// The bytes form, for files whose exact bytes matter (a kept manifest, a signature block).
export async function readSmallFileBytes(path: string, opts: SmallFileOptions): Promise<Buffer> {
  const where = opts.where ?? path;
  const bad = opts.badFileCode ?? 'usage';
  let fh: Held;
  try {
    // O_NONBLOCK: opening a fifo with no writer returns at once instead of waiting for one.
    fh = await openHeld(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.noFollow === true ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    // ENXIO/ENODEV: a socket or a device without a driver; anything else through the one errno map.
    const errno = errnoOf(e);
    if (errno === 'ENXIO' || errno === 'ENODEV') throw new SentinelError(bad, `${opts.what} is not a regular file`, { where, cause: e });
    // ELOOP under O_NOFOLLOW: the last component is a symlink.
    if (errno === 'ELOOP' && opts.noFollow === true) throw new SentinelError(bad, `${opts.what} is a symlink, not a regular file (not followed)`, { where, cause: e });
    throw ioError(e, `cannot open ${opts.what}`, where);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SentinelError(bad, `${opts.what} is ${typeName(st.mode)}, not a regular file`, { where });
    if (st.size > opts.maxBytes) throw new SentinelError(bad, `${opts.what} is ${st.size} bytes, more than the ${opts.maxBytes} such a file may hold`, { where });
    opts.accept?.(st);
    return await readExactly(fh, st.size, opts.what, where, opts.prefix ?? EMPTY);
  } catch (e) {
    throw ioError(e, `cannot read ${opts.what}`, where);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
