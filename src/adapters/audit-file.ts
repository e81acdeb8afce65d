// The audit log's file-level repairs: cutting a fragment off an append-only file (its +a lifted for
// the truncate only, on the very inode the log holds open) and errno → product error for its writes.
import { lstat, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';

export const FS_APPEND_FL = 0x20;
const FS_IMMUTABLE_FL = 0x10;

// Why: the chattr part the audit log needs; the flags adapter's FlagStore satisfies it.
export interface AppendFlagSetter {
  getFlags(path: string): Promise<number>;
  setFlag(path: string, flag: number, on: boolean): Promise<void>;
}

// Why: the +a flag is lifted only when `path` still names the inode behind `fh` (never another file put in its place).
export async function sameInode(fh: FileHandle, path: string): Promise<boolean> {
  const [a, b] = await Promise.all([fh.stat(), lstat(path).catch(() => null)]);
  return b !== null && b.isFile() && a.ino === b.ino && a.dev === b.dev;
}

// Why: an append-only file refuses truncate (EPERM) even to root; the daemon set +a itself and may lift it for
// the repair of its own last line, then sets it again at once.
export async function truncateAppendOnly(fh: FileHandle, path: string, size: number, flags: AppendFlagSetter | undefined): Promise<void> {
  try {
    await fh.truncate(size);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM' || flags === undefined) throw ioError(e, 'cannot cut the audit log back to its last whole line', path);
  }
  if (!(await sameInode(fh, path))) throw new SentinelError('tampered', 'the audit log path no longer names the file the daemon writes', { where: path });
  await flags.setFlag(path, FS_APPEND_FL, false);
  try {
    await fh.truncate(size);
  } catch (e) {
    throw ioError(e, 'cannot cut the audit log back to its last whole line', path);
  } finally {
    await flags.setFlag(path, FS_APPEND_FL, true);
  }
}

// Why: after a short write the file ends in `written` bytes of a line that was never whole: they go, so the file
// holds whole lines only and the next record chains to the last whole one.
export async function cutFragment(fh: FileHandle, path: string, written: number, flags: AppendFlagSetter | undefined): Promise<void> {
  const { size } = await fh.stat();
  await truncateAppendOnly(fh, path, size - written, flags);
}

// Why: a file put in the log's place (or a log that no longer holds the daemon's chain) is kept for inspection,
// not overwritten: renamed to `<log>.replaced-<time>` with its +a/+i lifted so it can be moved at all.
export async function moveAside(path: string, flags: AppendFlagSetter | undefined, now: Date): Promise<string | null> {
  const st = await lstat(path).catch(() => null);
  if (st === null) return null;
  if (flags !== undefined && st.isFile()) {
    const f = await flags.getFlags(path).catch(() => 0);
    if ((f & (FS_APPEND_FL | FS_IMMUTABLE_FL)) !== 0) {
      await flags.setFlag(path, FS_APPEND_FL, false).catch(() => undefined);
      await flags.setFlag(path, FS_IMMUTABLE_FL, false).catch(() => undefined);
    }
  }
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  for (let i = 0; ; i++) {
    const target = `${path}.replaced-${stamp}${i === 0 ? '' : `-${String(i)}`}`;
    if ((await lstat(target).catch(() => null)) !== null) continue;
    try {
      await rename(path, target);
    } catch (e) {
      throw ioError(e, 'cannot move the file found in place of the audit log aside', path);
    }
    return target;
  }
}

// Why: a log put back from the inode the daemon holds open goes in whole or not at all (a temp file, then rename).
export async function putBack(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(path), `.${basename(path)}.restore-${String(process.pid)}`);
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(e, 'cannot put the audit log back', path);
  }
}
