// Deleting a tree that may hold +i/+a entries through directory fds (native/src/remove-walk.c): each
// entry is looked at, opened and checked by name in its parent's fd, its flags cleared through its
// own fd, then unlinked; a directory swapped for a symlink is unlinked, never followed, so no flag
// outside the tree is ever lifted (docs/SECURITY.md#known-limits).
import { closeSync, constants, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { loadNative } from './native.js';

// Why 8: on a busy ext4 each unlink that frees blocks may wait for another writer's journal commit;
// threads overlap those waits (they hardly use a CPU), so their number is not the cores' count. A
// pruned 1 MB release (25 entries) at load 5-6 took 10.5-17.4 ms with 4 threads, 6.2-13.6 with 8 and
// no less with 16 (BENCHMARKS.md, Deploy); the walk uses one libuv pool thread and starts the others
// itself, so the pool stays as free as with one.
export const REMOVE_THREADS = 8;

/**
 * Removes `path` (a file, symlink or whole tree) through a descriptor of its parent directory.
 * Missing is fine. False (nothing done) when the addon lacks `removeTreeAtAsync`: the caller falls back.
 * A failure is the addon's errno-shaped error, its `path` made absolute (where it happened).
 */
export async function removeTreeByFd(path: string): Promise<boolean> {
  const addon = loadNative();
  if (addon === null || typeof addon.removeTreeAtAsync !== 'function') return false;
  const parent = dirname(path);
  // A parent anchored at a descriptor the vault holds (`/proc/<pid>/fd/<fd>`, src/vault/held.ts) is a
  // magic link the kernel resolves to that open directory itself, never by name: it is followed.
  const held = /^\/proc\/(self|\d+)\/fd\/\d+$/.test(parent);
  let fd: number;
  try {
    fd = openSync(parent, constants.O_RDONLY | constants.O_DIRECTORY | (held ? 0 : constants.O_NOFOLLOW));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
  try {
    await addon.removeTreeAtAsync(fd, basename(path), REMOVE_THREADS);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.path === 'string') err.path = join(parent, err.path);
    throw err;
  } finally {
    closeSync(fd);
  }
  return true;
}
