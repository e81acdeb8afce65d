// The flag-change tracer's process handling: close() must end the tracer even when it ignores SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchFlagChanges } from '../../src/adapters/watcher.js';

test('flag tracer: close() ends a tracer that ignores SIGTERM (SIGKILL after the grace period)', async () => {
  // A stand-in for bpftrace: bpftrace always honours SIGTERM, so a hung one can only be played.
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-flagwatch-'));
  const fake = join(dir, 'stubborn-tracer');
  await writeFile(fake, "#!/bin/sh\ntrap '' TERM\necho attached\nexec sleep 300\n");
  await chmod(fake, 0o755);
  try {
    const exits: string[] = [];
    const watch = await watchFlagChanges({ ownPid: process.pid, binary: fake, attachTimeoutMs: 5_000, stopGraceMs: 200, onChange: () => undefined, onExit: (r) => exits.push(r) });
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      watch.close().then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), 5_000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(closed, true, 'close() resolved within 5 s although the tracer ignores SIGTERM');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
