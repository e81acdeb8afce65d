// The addon's thread-pool jobs (inspection, staging, cold copy, async seal) against the real
// kernel: a work that cannot be queued settles its promise, a job that gets fewer threads still
// finishes, an inspected file's metadata and digest describe one inode even while the path is
// swapped under it, and the thread count is sized against libuv's pool (native/README.md#threads).
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadNative, nativeThreads } from '../../src/adapters/native.js';
import type { NativeAddon } from '../../src/adapters/native.js';
import { inspectTree } from '../../src/adapters/tree-records.js';
import { chattrFlagStore, ioctlFlagStore, seal } from '../../src/adapters/flags.js';
import { isSentinelError } from '../../src/core/errors.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const FS_IMMUTABLE_FL = 0x10;
const addon = loadNative();
const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const scratch = (): string => makeTempDir('native-jobs', shm);
const sha = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

after(() => removeTempDirs());

function ready(t: TestContext): NativeAddon | null {
  if (needs(t, addon !== null, 'native addon (npm run install)')) return null;
  if (needs(t, typeof addon?._failQueueAt === 'function', 'native addon with the _failQueueAt test hook (rebuild it)')) return null;
  return addon;
}

/** A tree of `n` small files: their relative paths and contents. */
function smallTree(n: number): { dir: string; paths: string[]; bodies: string[] } {
  const dir = scratch();
  const paths: string[] = [];
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    paths.push(`f${i}`);
    bodies.push(`file ${i}\n`.repeat(i + 1));
    writeFileSync(join(dir, `f${i}`), bodies[i]!);
  }
  return { dir, paths, bodies };
}

describe('a work that cannot be queued settles its promise', () => {
  test('no work queued: every async call rejects with EAGAIN and changes nothing', async (t) => {
    const n = ready(t);
    if (n === null) return;
    if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return;
    const { dir, paths } = smallTree(3);
    const abs = paths.map((p) => join(dir, p));

    n._failQueueAt!(0);
    await assert.rejects(n.setFlagManyAsync(abs, FS_IMMUTABLE_FL, true), { code: 'EAGAIN', syscall: 'napi_queue_async_work' });
    assert.deepEqual(n.getSealBitsMany(abs), [0, 0, 0], 'nothing was sealed');

    n._failQueueAt!(0);
    await assert.rejects(n.copyColdFileAsync!(abs[0]!, join(dir, 'copy')), { code: 'EAGAIN' });
    assert.equal(existsSync(join(dir, 'copy')), false);

    n._failQueueAt!(0);
    await assert.rejects(n.syncFsAsync!(dir), { code: 'EAGAIN' });

    n._failQueueAt!(0);
    await assert.rejects(n.inspectTreeAsync!(dir, 2, 1e9), { code: 'EAGAIN' });

    const bundle = join(dir, 'f2');
    const fd = openSync(bundle, 'r');
    try {
      n._failQueueAt!(0);
      const staged = n.stageFilesAsync!(fd, [join(dir, 's0'), join(dir, 's1')].join('\0'), new Float64Array([0, 4]), new Float64Array([4, 4]), new Uint32Array([0o644, 0o644]), 2);
      await assert.rejects(staged, { code: 'EAGAIN' });
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['f0', 'f1', 'f2'], 'no staged file was created');
  });

  test('a job of several works settled through the void settle helper settles once, after its last work, not its first', async (t) => {
    const n = ready(t);
    if (n === null) return;
    if (needs(t, typeof n._settleProbe === 'function', 'native addon with the _settleProbe test hook (rebuild it)')) return;
    let settled = false;
    const probe = n._settleProbe!(3).then(() => {
      settled = true;
    });
    try {
      // the first work has completed (its complete callback ran); the two others are held in their execute
      while (n._settleProbeStep!(false) < 1) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setImmediate(r));
      assert.equal(settled, false, 'not settled while two works of the job still run');
      assert.equal(n._settleProbeStep!(false), 1);
    } finally {
      n._settleProbeStep!(true);
    }
    await probe;
    assert.equal(n._settleProbeStep!(false), 3, 'settled once every work had completed');
  });

  test('through the flag store: a big async seal that cannot be queued is an io error naming a path', async (t) => {
    const n = ready(t);
    if (n === null) return;
    if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return;
    const { dir, paths } = smallTree(300);
    const abs = paths.map((p) => join(dir, p));
    n._failQueueAt!(0);
    const err: unknown = await seal(ioctlFlagStore()!, abs).then(() => null, (e: unknown) => e);
    assert.ok(isSentinelError(err, 'io'), `expected io, got ${String(err)}`);
    assert.equal(err.where, abs[0]);
    const lsattr = await chattrFlagStore().getFlagsMany!(abs.slice(0, 3));
    assert.deepEqual(lsattr.map((f) => f & FS_IMMUTABLE_FL), [0, 0, 0]);
  });

  test('fewer works queued than asked: inspection and staging still finish every entry', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const { dir, paths, bodies } = smallTree(40);
    n._failQueueAt!(1);
    const s = await inspectTree(n, dir, 4, { hashAnyMax: 1e9 });
    assert.ok(s !== null);
    assert.deepEqual([...s.paths].sort(), [...paths].sort());
    for (let i = 0; i < s.count; i++) {
      const k = paths.indexOf(s.paths[i]!);
      assert.equal(s.type(i), 'file');
      assert.equal(s.sha256(i), sha(bodies[k]!), paths[k]);
    }

    const blob = Buffer.concat(bodies.map((b) => Buffer.from(b)));
    const bundle = join(dir, 'bundle');
    writeFileSync(bundle, blob);
    const out = join(dir, 'staged');
    mkdirSync(out);
    const offsets = new Float64Array(bodies.length);
    const sizes = new Float64Array(bodies.length);
    let off = 0;
    bodies.forEach((b, i) => {
      offsets[i] = off;
      sizes[i] = Buffer.byteLength(b);
      off += sizes[i];
    });
    const fd = openSync(bundle, 'r');
    try {
      n._failQueueAt!(2);
      const raw = await n.stageFilesAsync!(fd, paths.map((p) => join(out, p)).join('\0'), offsets, sizes, new Uint32Array(bodies.length).fill(0o640), 4);
      for (let i = 0; i < bodies.length; i++) {
        assert.equal(raw.readInt32LE(i * 48), 0, `${paths[i]!} staged`);
        assert.equal(raw.toString('hex', i * 48 + 16, i * 48 + 48), sha(bodies[i]!));
      }
    } finally {
      closeSync(fd);
    }
  });
});

// Swaps the two names of `dir` with renameat2(RENAME_EXCHANGE) as fast as it can until killed.
const SWAPPER = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
os.chdir(sys.argv[1])
print("ready", flush=True)
while True:
    if libc.renameat2(-100, b"x", -100, b"y", 2) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
`;

describe('one inode per record', () => {
  test('a file swapped while it is inspected: type, mode, size and digest always come from the same file', async (t) => {
    const n = ready(t);
    if (n === null) return;
    if (needs(t, spawnSync('python3', ['-c', 'import ctypes; ctypes.CDLL(None).renameat2']).status === 0, 'python3 with renameat2')) return;
    const dir = scratch();
    const a = 'a'.repeat(1000);
    const b = 'b'.repeat(3000);
    writeFileSync(join(dir, 'x'), a);
    writeFileSync(join(dir, 'y'), b);
    chmodSync(join(dir, 'x'), 0o644);
    chmodSync(join(dir, 'y'), 0o600);
    const variants = new Map([
      [`${0o644}/1000/1000/${sha(a)}`, 'a'],
      [`${0o600}/3000/3000/${sha(b)}`, 'b'],
    ]);
    const swapper = spawn('python3', ['-c', SWAPPER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        swapper.stdout.once('data', () => resolve());
        swapper.once('exit', (code) => reject(new Error(`swapper exited early (${String(code)})`)));
      });
      const seen = new Map<string, number>();
      // At least 1.5 s and 3 passes; on a busy machine the swapper may not have run in that time, so
      // go on (at most 20 s) until the pass has met both variants.
      const deadline = performance.now() + 1500;
      const longest = performance.now() + 20_000;
      const raced = (): boolean => (seen.get('a') ?? 0) > 0 && (seen.get('b') ?? 0) > 0;
      let rounds = 0;
      while (performance.now() < deadline || rounds < 3 || (!raced() && performance.now() < longest)) {
        rounds++;
        const s = await inspectTree(n, dir, 2, { hashAnyMax: 1e6 });
        assert.ok(s !== null);
        for (let i = 0; i < s.count; i++) {
          if (s.type(i) === null) continue; // ENOENT in the instant of no name: never happens with RENAME_EXCHANGE, harmless
          const key = `${s.mode(i)}/${s.size(i)}/${s.hashedBytes(i)}/${s.sha256(i)}`;
          const variant = variants.get(key) ?? 'mixed';
          seen.set(variant, (seen.get(variant) ?? 0) + 1);
        }
      }
      assert.equal(seen.get('mixed') ?? 0, 0, `records mixing two inodes: ${JSON.stringify([...seen])}`);
      assert.ok(raced(), `the swap must have raced the pass (${String(rounds)} passes): ${JSON.stringify([...seen])}`);
    } finally {
      swapper.kill('SIGKILL');
    }
  });
});

describe('syncFsAsync (the deploy durability step)', () => {
  test('flushes the filesystem of a directory or a file; a missing path or a symlink is an error naming it', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const { dir, paths } = smallTree(2);
    await n.syncFsAsync!(dir);
    await n.syncFsAsync!(join(dir, paths[0]!));
    await assert.rejects(n.syncFsAsync!(join(dir, 'missing')), { code: 'ENOENT', syscall: 'open', path: join(dir, 'missing') });
    symlinkSync(dir, join(dir, 'link'));
    await assert.rejects(n.syncFsAsync!(join(dir, 'link')), { code: 'ELOOP', syscall: 'open' });
    assert.throws(() => n.syncFsAsync!(42 as unknown as string), { name: 'TypeError' });
  });

  test('syncFsFdAsync: through a held directory descriptor; one that is not open is EBADF naming `where`', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const { dir } = smallTree(1);
    const fd = openSync(dir, 'r');
    try {
      await n.syncFsFdAsync!(fd, dir);
    } finally {
      closeSync(fd);
    }
    // Far above any descriptor this process holds (a just-closed number could be reused meanwhile).
    await assert.rejects(n.syncFsFdAsync!(999_999, `${dir} (held)`), { code: 'EBADF', syscall: 'syncfs', path: `${dir} (held)` });
    assert.throws(() => n.syncFsFdAsync!(-1, dir), { name: 'TypeError' });
  });
});

describe('thread sizing', () => {
  test('one thread per core, one pool thread always left free, at most 16', () => {
    assert.equal(nativeThreads(2, 4), 2);
    assert.equal(nativeThreads(8, 4), 3);
    assert.equal(nativeThreads(8, 9), 8);
    assert.equal(nativeThreads(4, 1), 1, 'a pool of one still runs the job');
    assert.equal(nativeThreads(1, 4), 1);
    assert.equal(nativeThreads(64, 128), 16);
  });

  test('the default follows UV_THREADPOOL_SIZE as the process started', () => {
    const mod = new URL('../../src/adapters/native.js', import.meta.url).href;
    const threadsWith = (pool: string | undefined): number => {
      const env = { ...process.env };
      if (pool === undefined) delete env.UV_THREADPOOL_SIZE;
      else env.UV_THREADPOOL_SIZE = pool;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(mod)}).then((m) => console.log(m.nativeThreads(64)))`], { encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout.trim());
    };
    assert.equal(threadsWith(undefined), 3, 'libuv default pool of 4');
    assert.equal(threadsWith('9'), 8);
    assert.equal(threadsWith('junk'), 3);
  });
});
