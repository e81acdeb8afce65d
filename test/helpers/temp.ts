// Temporary directories for one test file, removed by its `after` hook with the seal flags lifted
// first (a +i or +a entry cannot be deleted, even by root).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Directories made by this test file, for removeTempDirs(). */
const made: string[] = [];

// A fresh `<base>/sentinel-<label>-XXXXXX` (base: os.tmpdir(); /dev/shm or a mount point for another filesystem).
export function makeTempDir(label: string, base = tmpdir()): string {
  const d = mkdtempSync(join(base, `sentinel-${label}-`));
  made.push(d);
  return d;
}

// Lifts +i and +a from everything below `path` (symlinks make chattr -R exit 1; -f keeps it quiet) and deletes it.
export function removeSealed(path: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', '-a', path]);
  rmSync(path, { recursive: true, force: true });
}

// For the `after` hook: removes every directory makeTempDir made in this file.
export function removeTempDirs(): void {
  for (const d of made.splice(0)) removeSealed(d);
}
