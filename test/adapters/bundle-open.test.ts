// Opening a bundle by path (the CLI, and the daemon's control socket on behalf of a control-group
// member): anything but a regular file is refused before it is opened for reading, because opening a
// device or a fifo is itself an action (a hardware watchdog arms on open, a fifo's blocked writer is released).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openBundle } from '../../src/adapters/bundle-file.js';
import { isSentinelError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-bundle-open-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a fifo given as the bundle is refused without being opened: its blocked writer stays blocked', async () => {
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  // The writer's open of the fifo returns only once a reader opens it.
  const writer = spawn('sh', ['-c', 'exec 3>"$1"; echo released', 'sh', fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  writer.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => writer.once('exit', () => r()));
  try {
    await assert.rejects(openBundle(fifo), (e) => isSentinelError(e, 'usage') && /not a regular file/.test(e.message));
    await assert.rejects(openBundle(fifo, undefined, { noFollow: true }), (e) => isSentinelError(e, 'usage'));
    // Released by an open, the writer prints and exits at once; still blocked, it does neither.
    const released = await Promise.race([exited.then(() => true), sleep(500).then(() => false)]);
    assert.equal(released, false, `the fifo was opened for reading (writer said ${JSON.stringify(out)})`);
  } finally {
    writer.kill('SIGKILL');
    await exited;
  }
});

test('a symlink is refused with noFollow and followed to a regular file without it; a directory is refused', async () => {
  const file = join(dir, 'not-a-bundle');
  writeFileSync(file, 'x'.repeat(10));
  const link = join(dir, 'link');
  symlinkSync(file, link);
  await assert.rejects(openBundle(link, undefined, { noFollow: true }), (e) => isSentinelError(e, 'bad-path') && /symlink/.test(e.message));
  // Followed: the file itself is read, and refused for what it holds.
  await assert.rejects(openBundle(link), (e) => e instanceof Error && /not a sentinel bundle/.test(e.message));
  await assert.rejects(openBundle(dir), (e) => isSentinelError(e, 'usage') && /not a regular file/.test(e.message));
  await assert.rejects(openBundle(join(dir, 'absent')), (e) => isSentinelError(e, 'not-found'));
});
