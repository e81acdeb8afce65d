// The vault lock (docs/VAULT.md#locking): a kernel lock (flock) on a file that is never unlinked.
// Exclusive between writers, shared for verify, `busy` after the timeout, released by the kernel
// when its holder is killed, and the holder's marker tells the next one that an operation crashed.
// Both implementations are checked: the native flock and util-linux's flock(1).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isSentinelError } from '../../src/core/errors.js';
import { acquireLock } from '../../src/vault/lock.js';
import { flockToolLocker, nativeLocker } from '../../src/adapters/file-lock.js';
import type { FileLocker } from '../../src/adapters/file-lock.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';
import { needs } from '../helpers/env.js';

after(cleanupAll);

const hasFlockTool = spawnSync('flock', ['--version']).status === 0;
const lockers: [string, () => FileLocker | null][] = [
  ['native flock', () => nativeLocker()],
  ['flock(1)', () => (hasFlockTool ? flockToolLocker() : null)],
];

/** A child process that takes the lock through the compiled module and reports "locked", then waits. */
function holder(path: string, shared: boolean, kind: string): Promise<{ kill(): Promise<void> }> {
  const mod = new URL('../../src/vault/lock.js', import.meta.url).href;
  const fl = new URL('../../src/adapters/file-lock.js', import.meta.url).href;
  const code = `const {acquireLock}=await import(${JSON.stringify(mod)});const f=await import(${JSON.stringify(fl)});
    const locker=${JSON.stringify(kind)}==='flock(1)'?f.flockToolLocker():f.nativeLocker();
    await acquireLock(${JSON.stringify(path)},{timeoutMs:5000,shared:${String(shared)},locker});process.stdout.write('locked\\n');setInterval(()=>{},1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('exit', (c) => reject(new Error(`lock holder exited early (${String(c)})`)));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('locked')) {
        child.removeAllListeners('exit');
        resolve({ kill: () => new Promise((r) => { child.on('exit', () => r()); child.kill('SIGKILL'); }) });
      }
    });
  });
}

for (const [name, make] of lockers) {
  describe(`vault lock (${name})`, () => {
    test('one exclusive holder at a time; busy after the timeout; the file stays and is empty once released', async (t) => {
      const locker = make();
      if (needs(t, locker !== null, name)) return;
      const path = join(tempDir('lock'), '.lock');
      const a = await acquireLock(path, { timeoutMs: 0, locker: locker! });
      assert.equal(a.staleTakeover, false);
      assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);
      await assert.rejects(acquireLock(path, { timeoutMs: 0, locker: locker! }), (e) => isSentinelError(e, 'busy'));
      await assert.rejects(acquireLock(path, { timeoutMs: 150, locker: locker! }), (e) => isSentinelError(e, 'busy'));
      await assert.rejects(acquireLock(path, { timeoutMs: 0, shared: true, locker: locker! }), (e) => isSentinelError(e, 'busy'), 'verify waits for a writer');
      const waiting = acquireLock(path, { timeoutMs: 10_000, locker: locker! });
      await a.release();
      const b = await waiting;
      assert.equal(b.staleTakeover, false, 'a released lock is not a crash');
      await b.release();
      assert.equal(existsSync(path), true, 'the lock file is never unlinked');
      assert.equal(readFileSync(path, 'utf8'), '');
    });

    test('shared holders coexist and keep a writer out until the last one leaves', async (t) => {
      const locker = make();
      if (needs(t, locker !== null, name)) return;
      const path = join(tempDir('lock-sh'), '.lock');
      const r1 = await acquireLock(path, { timeoutMs: 0, shared: true, locker: locker! });
      const r2 = await acquireLock(path, { timeoutMs: 0, shared: true, locker: locker! });
      await assert.rejects(acquireLock(path, { timeoutMs: 0, locker: locker! }), (e) => isSentinelError(e, 'busy'));
      await r1.release();
      await assert.rejects(acquireLock(path, { timeoutMs: 0, locker: locker! }), (e) => isSentinelError(e, 'busy'));
      await r2.release();
      const w = await acquireLock(path, { timeoutMs: 0, locker: locker! });
      await w.release();
    });

    test('a holder killed with SIGKILL releases the lock at once, and the next writer sees the crash', async (t) => {
      const locker = make();
      if (needs(t, locker !== null, name)) return;
      const path = join(tempDir('lock-kill'), '.lock');
      const h = await holder(path, false, name);
      await assert.rejects(acquireLock(path, { timeoutMs: 0, locker: locker! }), (e) => isSentinelError(e, 'busy'));
      await h.kill();
      const a = await acquireLock(path, { timeoutMs: 2000, locker: locker! });
      assert.equal(a.staleTakeover, true, 'the killed holder never finished its operation');
      await a.release();
      // A killed reader leaves nothing to recover.
      const r = await holder(path, true, name);
      await r.kill();
      const b = await acquireLock(path, { timeoutMs: 2000, locker: locker! });
      assert.equal(b.staleTakeover, false);
      await b.release();
    });
  });
}

test('the lock file must be a regular file with one link: a symlink or a hard link there is refused', async () => {
  const dir = tempDir('lock-bad');
  const target = join(dir, 'elsewhere');
  writeFileSync(target, '');
  symlinkSync(target, join(dir, '.lock'));
  await assert.rejects(acquireLock(join(dir, '.lock'), { timeoutMs: 0 }), (e) => isSentinelError(e, 'bad-path') || isSentinelError(e, 'tampered'));
  const dir2 = tempDir('lock-link');
  writeFileSync(join(dir2, 'other'), '');
  spawnSync('ln', [join(dir2, 'other'), join(dir2, '.lock')]);
  await assert.rejects(acquireLock(join(dir2, '.lock'), { timeoutMs: 0 }), (e) => isSentinelError(e, 'tampered'));
});
