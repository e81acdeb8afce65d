// `vault init /var/lib/omnimind/phi-engine` on a fresh host: the missing parents are created, each
// 0755 whatever the umask (services running as other users must reach `current/tree`), and removed
// again if init fails.
import { chmod, mkdir, rmdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SentinelError } from '../core/errors.js';

// Why: returns the directories it created, shallowest first, so a failed init can remove exactly those.
export async function createMissingParents(dir: string): Promise<string[]> {
  const missing: string[] = [];
  let d = dir;
  for (;;) {
    const st = await stat(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw new SentinelError('io', 'cannot inspect a parent of the vault', { where: d, cause: e });
    });
    if (st !== null) {
      if (!st.isDirectory()) throw new SentinelError('exists', 'a parent of the vault exists and is not a directory', { where: d });
      break;
    }
    missing.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  const created: string[] = [];
  try {
    for (const p of missing) {
      await mkdir(p, { mode: 0o755 });
      created.push(p);
      await chmod(p, 0o755);
    }
  } catch (cause) {
    await removeCreatedParents(created);
    throw new SentinelError('io', 'cannot create a parent directory of the vault', { where: missing[created.length] ?? dir, cause });
  }
  return created;
}

// Why: a failed init leaves nothing behind, not even the parents it made (deepest first; only if still empty).
export async function removeCreatedParents(created: string[]): Promise<void> {
  for (const p of [...created].reverse()) await rmdir(p).catch(() => undefined);
}
