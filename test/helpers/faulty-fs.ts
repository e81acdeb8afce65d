// A filesystem whose flushes really fail: a FUSE passthrough (test/helpers/faulty-fs.py, Debian's
// python3-fusepy) of a backing directory, mounted at a unique path. While `failSync(true)` holds,
// every fsync/fdatasync on a file in it returns EIO from the kernel, as a disk whose writeback fails
// would; writes themselves still succeed. While `failWritesOver(n)` holds, a write of more than n
// bytes fails with ENOSPC and writes nothing (a nearly full disk: a short line fits, a long one not).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { waitFor } from './wait.js';

export interface FaultyFs {
  /** The mount point. */
  path: string;
  /** From now on fsync/fdatasync fail with EIO (true) or pass through (false). */
  failSync(on: boolean): void;
  /** From now on a write of more than `bytes` bytes fails with ENOSPC (a number), or every write passes (null). */
  failWritesOver(bytes: number | null): void;
}

const SCRIPT = join(packageRoot(), 'test', 'helpers', 'faulty-fs.py');
const mounts: { path: string; root: string; proc: ChildProcess }[] = [];

function isMounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

/** Whether this host can run it: root, /dev/fuse and Debian's python3-fusepy. */
export function canMountFaultyFs(): boolean {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0 || !existsSync('/dev/fuse')) return false;
  return spawnSync('/usr/bin/python3', ['-c', 'import fusepy'], { stdio: 'ignore' }).status === 0;
}

export async function mountFaultyFs(label: string): Promise<FaultyFs> {
  const root = mkdtempSync(join('/tmp', `sentinel-faultyfs-${label}-`));
  const backing = join(root, 'backing');
  const path = join(root, 'mnt');
  const control = join(root, 'fail-sync');
  const writes = join(root, 'fail-writes-over');
  spawnSync('mkdir', ['-m', '0700', backing, path]);
  const proc = spawn('/usr/bin/python3', [SCRIPT, backing, path, control, writes], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  mounts.push({ path, root, proc });
  await waitFor(`the FUSE mount at ${path}`, 10_000, () => {
    if (proc.exitCode !== null) throw new Error(`faulty-fs exited ${String(proc.exitCode)}: ${stderr}`);
    return isMounted(path) ? true : null;
  });
  return {
    path,
    failSync(on: boolean): void {
      if (on) writeFileSync(control, '');
      else rmSync(control, { force: true });
    },
    failWritesOver(bytes: number | null): void {
      if (bytes !== null) writeFileSync(writes, String(bytes));
      else rmSync(writes, { force: true });
    },
  };
}

// For the `after` hook: every mount unmounted, its process gone, its directories removed.
export async function unmountAllFaulty(): Promise<void> {
  for (const m of mounts.splice(0).reverse()) {
    spawnSync('umount', ['-l', m.path]);
    if (m.proc.exitCode === null && m.proc.signalCode === null) {
      const gone = new Promise((r) => m.proc.once('exit', r));
      m.proc.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
      if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    }
    rmSync(m.root, { recursive: true, force: true });
  }
}
