// Exclusive vault lock: deploys, heals, rollbacks and recovery are serialised per vault. The lock is a
// file created with O_EXCL holding the owner's pid and process start time, so a lock left by a
// process killed with SIGKILL is recognised as stale and taken over.
import { open, readFile, unlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';

export interface VaultLock {
  readonly path: string;
  /** True when the lock was taken over from a process that died holding it (a crash to recover from). */
  readonly staleTakeover: boolean;
  release(): Promise<void>;
}

/** The process start time (field 22 of /proc/PID/stat), or null when no such process is alive (zombies count as dead). */
function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields counted after the ")" that ends the command name: state is field 3, starttime field 22.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null;
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

const ownStart = startTimeOf(process.pid) ?? '?';

/** What holds the lock file now: nobody (it vanished), a live process, or a dead one (stale, with its content). */
async function holderOf(path: string): Promise<{ kind: 'gone' } | { kind: 'live' } | { kind: 'stale'; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
    throw e;
  }
  const [pidText, start] = text.trim().split(' ');
  const pid = Number(pidText);
  // A half-written lock file (crash between create and write) holds no owner.
  if (!Number.isInteger(pid) || pid <= 0) return { kind: 'stale', text };
  const liveStart = startTimeOf(pid);
  const dead = liveStart === null || (start !== undefined && start !== '?' && liveStart !== start);
  return dead ? { kind: 'stale', text } : { kind: 'live' };
}

// Why: a second concurrent deploy must wait or get `busy`, never interleave with the first.
export async function acquireLock(path: string, opts: { timeoutMs: number; pollMs?: number } = { timeoutMs: 0 }): Promise<VaultLock> {
  const deadline = Date.now() + opts.timeoutMs;
  const pollMs = opts.pollMs ?? 25;
  let staleTakeover = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(`${process.pid} ${ownStart}\n`);
      } finally {
        await fh.close();
      }
      let released = false;
      return {
        path,
        staleTakeover,
        release: async () => {
          if (released) return;
          released = true;
          await unlink(path).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          });
        },
      };
    } catch (e) {
      const errno = errnoOf(e);
      if (errno !== 'EEXIST') throw ioError(e, errno === 'ENOENT' ? 'the vault staging directory is missing' : 'cannot create the vault lock', path);
    }
    const holder = await holderOf(path);
    if (holder.kind === 'gone') continue;
    if (holder.kind === 'stale') {
      // Re-read just before removing, so a lock another waiter has just taken is not removed.
      const again = await readFile(path, 'utf8').catch(() => null);
      if (again === holder.text) {
        await unlink(path).catch(() => undefined);
        staleTakeover = true;
      }
      continue;
    }
    if (Date.now() >= deadline) throw new SentinelError('busy', 'another operation holds the vault lock', { where: path });
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
