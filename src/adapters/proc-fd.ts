// Reopening a descriptor, or a name below a directory's descriptor, goes through /proc/self/fd/N: the same file or
// directory, whatever its path holds now. /proc is not mounted everywhere (a chroot, a rescue shell, a minimal
// container); callers then open by path and check that they got what they checked (docs/SECURITY.md#without-proc).
import { existsSync } from 'node:fs';
import { constants, open, type FileHandle } from 'node:fs/promises';
import { SentinelError } from '../core/errors.js';

/** Linux's O_PATH (not in Node's constants): a descriptor that names a file without opening it. */
export const O_PATH = 0o10000000;

let mounted: boolean | undefined;

/** Whether /proc/self/fd can be used (looked at once per process). */
export function procFdAvailable(): boolean {
  mounted ??= existsSync('/proc/self/fd');
  return mounted;
}

/** Without /proc: `path` opened by path (never blocking on a fifo put there), kept only if it is the file just checked (`st`). */
export async function openSameFile(path: string, st: { dev: number; ino: number }, flags: number): Promise<FileHandle> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  try {
    const now = await fh.stat();
    if (now.dev === st.dev && now.ino === st.ino) return fh;
  } catch (e) {
    await fh.close();
    throw e;
  }
  await fh.close();
  throw new SentinelError('io', 'the file was replaced while it was opened', { where: path });
}
