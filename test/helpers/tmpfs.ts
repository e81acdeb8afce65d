// A small tmpfs of its own per test, to make a disk really full: mounted at a unique path, filled to
// ENOSPC by a filler file, freed by removing it, unmounted (flags lifted first) by unmountAll().
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface TestTmpfs {
  /** The mount point. */
  path: string;
  /** Writes a filler file until the filesystem refuses (ENOSPC); returns the bytes it took. */
  fill(): number;
  /** Removes the filler: the space is back. */
  free(): void;
}

const mounted: string[] = [];

// Why: ENOSPC must come from the kernel, not a mock; a tmpfs of a few pages fills in microseconds.
export function mountTmpfs(label: string, sizeBytes: number): TestTmpfs {
  const path = mkdtempSync(join('/tmp', `sentinel-tmpfs-${label}-`));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeBytes)},mode=0700`, 'tmpfs', path], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmdirSync(path);
    throw new Error(`mount tmpfs on ${path} failed: ${r.stderr}`);
  }
  mounted.push(path);
  const filler = join(path, '.filler');
  return {
    path,
    fill(): number {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 0x66);
      let total = 0;
      try {
        for (;;) {
          const n = writeSync(fd, chunk);
          total += n;
          if (n < chunk.length) break;
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
      return total;
    },
    free(): void {
      rmSync(filler, { force: true });
    },
  };
}

/** Whether this host can mount a tmpfs (root, mount(8)). */
export function canMountTmpfs(): boolean {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false;
  try {
    const t = mountTmpfs('probe', 65_536);
    unmountOne(t.path);
    return true;
  } catch {
    return false;
  }
}

function unmountOne(path: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', '-a', path]);
  spawnSync('umount', ['-l', path]);
  try {
    rmdirSync(path);
  } catch {
    // still busy: left for the next boot's /tmp cleanup rather than failing the test run
  }
  const i = mounted.indexOf(path);
  if (i >= 0) mounted.splice(i, 1);
}

// For the `after` hook: every tmpfs this test file mounted is unmounted and its mount point removed.
export function unmountAll(): void {
  for (const p of [...mounted].reverse()) unmountOne(p);
}
