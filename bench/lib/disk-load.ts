// A writer that keeps a filesystem's journal busy while a benchmark runs (bench/deploy-bench.ts
// --disk-load): one `sh` looping `dd` of 64 MiB with conv=fsync into a file in DIR, which is on the
// filesystem under test. What it stands for: other writers on a shared machine, whose commits each
// flush of the bench then waits behind.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export interface DiskLoad {
  /** What the load is, for the bench's output. */
  what: string;
  stop(): Promise<void>;
}

export function startDiskLoad(dir: string): DiskLoad {
  const file = join(dir, 'disk-load.bin');
  const child = spawn('sh', ['-c', 'while :; do dd if=/dev/zero of="$1" bs=1M count=64 conv=fsync status=none || exit 1; done', 'sh', file], { stdio: 'ignore', detached: true });
  return {
    what: 'a parallel writer on the same filesystem: dd of 64 MiB with conv=fsync, in a loop',
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => {
          rmSync(file, { force: true });
          resolve();
        });
        // The loop and its dd: the whole process group.
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      }),
  };
}
