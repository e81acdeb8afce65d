// The addon's tree removal on several threads at once (native/src/remove-walk.c) keeps every
// property of the one-thread walk: deep and wide sealed trees go whole, a symlink planted anywhere
// in the tree is unlinked and never followed out of it, a failure on one thread stops the walk and
// is reported with its entry's path (never a partial removal reported as done), and an entry
// swapped while the tree is being removed is refused or unlinked, never followed. The addon's gate
// holds the walk at a known entry so the swap happens there, not by chance. Real chattr and lsattr.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import type { NativeAddon, NativeSystemError } from '../../src/adapters/native.js';
import { REMOVE_THREADS } from '../../src/adapters/remove-tree.js';
import { lsattrLetters } from '../helpers/attrs.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

after(() => removeTempDirs());

const addon = loadNative();

function ready(t: TestContext): NativeAddon | null {
  if (needs(t, addon !== null && typeof addon.removeTreeAtAsync === 'function' && typeof addon._removeGate === 'function', 'native addon with removeTreeAtAsync and _removeGate (npm run install)')) return null;
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return null;
  return addon;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** <d>/live/app/{engine.py,lib/core.py}, sealed as a live release is. */
function liveRelease(d: string): string {
  const app = join(d, 'live', 'app');
  mkdirSync(join(app, 'lib'), { recursive: true });
  writeFileSync(join(app, 'engine.py'), 'live engine\n');
  writeFileSync(join(app, 'lib', 'core.py'), 'live core\n');
  run('chattr', ['-R', '+i', join(d, 'live')]);
  return app;
}

function assertLiveSealed(app: string): void {
  for (const p of [app, join(app, 'engine.py'), join(app, 'lib'), join(app, 'lib', 'core.py')]) {
    assert.ok(existsSync(p), `${p} still exists`);
    assert.match(lsattrLetters(p), /i/, `${p} still +i`);
  }
  assert.equal(readFileSync(join(app, 'engine.py'), 'utf8'), 'live engine\n');
  assert.equal(readFileSync(join(app, 'lib', 'core.py'), 'utf8'), 'live core\n');
}

/**
 * <d>/tree: `width` directories of 8 files, `width` files at the top, a chain of `depth` nested
 * directories with a file in each, an append-only log, and symlinks into the live release from
 * several directories (one to its directory, one to a file, one up the chain); everything that
 * takes flags sealed +i.
 */
function bigTree(d: string, app: string, width: number, depth: number): string {
  const root = join(d, 'tree');
  mkdirSync(root);
  for (let i = 0; i < width; i++) {
    mkdirSync(join(root, `w${i}`));
    for (let j = 0; j < 8; j++) writeFileSync(join(root, `w${i}`, `f${j}.txt`), `w${i}/f${j}\n`.repeat(64));
    writeFileSync(join(root, `top${i}.bin`), Buffer.alloc(4096, i));
  }
  let deep = join(root, 'deep');
  mkdirSync(deep);
  for (let k = 0; k < depth; k++) {
    writeFileSync(join(deep, 'leaf.txt'), `level ${k}\n`);
    if (k % 10 === 0) symlinkSync(app, join(deep, 'to-live'));
    deep = join(deep, 'd');
    mkdirSync(deep);
  }
  symlinkSync('../..', join(deep, 'up'));
  writeFileSync(join(root, 'log'), 'appended\n');
  run('chattr', ['+a', join(root, 'log')]);
  symlinkSync(app, join(root, 'w0', 'app-link'));
  symlinkSync(join(app, 'engine.py'), join(root, `w${width - 1}`, 'engine-link'));
  spawnSync('chattr', ['-R', '-f', '+i', root]); // exits 1 over the symlinks, which take no flags
  assert.match(lsattrLetters(join(root, 'w1', 'f3.txt')), /i/);
  assert.match(lsattrLetters(join(root, 'log')), /a/);
  return root;
}

async function withDir<T>(dir: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = openSync(dir, 'r');
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}

// Up to 30 s, not a count of polls (10 s at best, less the busier the machine).
async function until(cond: () => boolean, what: string): Promise<void> {
  await waitFor(what, 30_000, () => (cond() ? true : null), 5);
}

describe('removeTreeAtAsync on several threads', () => {
  test('the vault removes with more than one thread; a thread count out of 1..16 is refused before anything is done', (t) => {
    const n = ready(t);
    if (n === null) return;
    assert.ok(REMOVE_THREADS > 1);
    for (const bad of [0, 17, 1.5, -1]) assert.throws(() => n.removeTreeAtAsync!(0, 'x', bad), RangeError, String(bad));
    assert.throws(() => n.removeTreeAtAsync!(0, 'x', 'four' as unknown as number), TypeError);
  });

  for (const threads of [1, 2, 4, REMOVE_THREADS, 16]) {
    test(`a wide and deep sealed tree with symlinks into the live release, ${threads} thread(s): all gone, live untouched, no fd left open`, async (t) => {
      const n = ready(t);
      if (n === null) return;
      const d = makeTempDir('rmthreads');
      const app = liveRelease(d);
      const root = bigTree(d, app, 40, 120);
      const fds = openFds();
      await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree', threads));
      assert.equal(existsSync(root), false);
      assertLiveSealed(app);
      assert.equal(openFds(), fds, 'every descriptor the walk opened is closed');
      await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree', threads)); // missing is fine
    });
  }

  test('one entry that fails among hundreds (a hard link to a sealed live file): EPERM with its path, the tree not reported removed, the live file untouched; removed once it can be', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmthreads');
    const app = liveRelease(d);
    const root = bigTree(d, app, 40, 20);
    writeFileSync(join(d, 'live.py'), 'live');
    run('chattr', ['-i', join(root, 'w17')]);
    linkSync(join(d, 'live.py'), join(root, 'w17', 'hl'));
    run('chattr', ['+i', join(root, 'w17'), join(d, 'live.py')]);
    const fds = openFds();
    await withDir(d, (fd) =>
      assert.rejects(n.removeTreeAtAsync!(fd, 'tree', REMOVE_THREADS), (e: NativeSystemError) => {
        assert.equal(e.code, 'EPERM');
        assert.equal(e.syscall, 'unlinkat');
        assert.equal(e.path, 'tree/w17/hl');
        return true;
      }),
    );
    assert.equal(openFds(), fds, 'every descriptor is closed after a failure too');
    assert.ok(existsSync(join(root, 'w17', 'hl')), 'the failed entry is still there');
    assert.ok(existsSync(root), 'the tree is not gone, and was not reported so');
    assert.match(lsattrLetters(join(d, 'live.py')), /i/);
    assert.equal(readFileSync(join(d, 'live.py'), 'utf8'), 'live');
    assertLiveSealed(app);
    // What stopped it is lifted: the same call finishes the job.
    run('chattr', ['-i', join(d, 'live.py')]);
    await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree', REMOVE_THREADS));
    assert.equal(existsSync(root), false);
    assert.equal(readFileSync(join(d, 'live.py'), 'utf8'), 'live');
  });

  test('two entries that fail on different threads: one failure is reported, with its own path', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmthreads');
    const app = liveRelease(d);
    const root = bigTree(d, app, 24, 4);
    writeFileSync(join(d, 'live.py'), 'live');
    for (const w of ['w3', 'w20']) {
      run('chattr', ['-i', join(root, w)]);
      linkSync(join(d, 'live.py'), join(root, w, 'hl'));
      run('chattr', ['+i', join(root, w)]);
    }
    run('chattr', ['+i', join(d, 'live.py')]);
    await withDir(d, (fd) =>
      assert.rejects(n.removeTreeAtAsync!(fd, 'tree', REMOVE_THREADS), (e: NativeSystemError) => {
        assert.equal(e.code, 'EPERM');
        assert.ok(e.path === 'tree/w3/hl' || e.path === 'tree/w20/hl', String(e.path));
        return true;
      }),
    );
    assert.match(lsattrLetters(join(d, 'live.py')), /i/);
    assertLiveSealed(app);
  });
});

describe('removeTreeAtAsync and a tree swapped while it is removed (several threads)', () => {
  /**
   * Holds the removal of <d>/tree at `rel` (`point`), runs `swap`, lets it go on; returns what it
   * settled with (an error, or null when it resolved).
   */
  async function removeWithSwap(n: NativeAddon, d: string, rel: string, point: 'open' | 'list', swap: () => void): Promise<NativeSystemError | null> {
    const gate = join(d, 'gate');
    try {
      return await withDir(d, async (fd) => {
        n._removeGate!(rel, gate, point);
        const removing = n.removeTreeAtAsync!(fd, 'tree', REMOVE_THREADS).then(
          () => null,
          (e: NativeSystemError) => e,
        );
        await until(() => existsSync(`${gate}.reached`), `the walk to reach ${rel}`);
        swap();
        writeFileSync(gate, '');
        return await removing;
      });
    } finally {
      if (!existsSync(gate)) writeFileSync(gate, ''); // never leave a walk waiting
    }
  }

  /** <d>/tree/app/{engine.py,lib/core.py} and 30 more sealed files beside app, like a pruned release. */
  function oldRelease(d: string): string {
    const root = join(d, 'tree');
    mkdirSync(join(root, 'app', 'lib'), { recursive: true });
    writeFileSync(join(root, 'app', 'engine.py'), 'old engine\n');
    writeFileSync(join(root, 'app', 'lib', 'core.py'), 'old core\n');
    for (let i = 0; i < 30; i++) writeFileSync(join(root, `f${i}`), `old ${i}\n`);
    run('chattr', ['-R', '+i', root]);
    return root;
  }

  test('a directory swapped for a symlink into the live release after it is looked at, before it is opened: refused at it, live untouched', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmswap');
    const app = liveRelease(d);
    const root = oldRelease(d);
    const e = await removeWithSwap(n, d, 'tree/app', 'open', () => {
      run('chattr', ['-i', root, join(root, 'app')]);
      renameSync(join(root, 'app'), join(root, 'moved'));
      symlinkSync(app, join(root, 'app'));
    });
    assert.ok(e !== null, 'the removal must not resolve');
    // O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR (the open never resolves it).
    assert.equal(e.code, 'ENOTDIR');
    assert.equal(e.syscall, 'openat');
    assert.equal(e.path, 'tree/app');
    assertLiveSealed(app);
    assert.match(lsattrLetters(join(root, 'moved', 'engine.py')), /i/, 'nothing below the swapped directory was touched');
  });

  test('a directory swapped for a symlink into the live release once opened, before it is listed: emptied through its fd, the symlink not removed as it', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmswap');
    const app = liveRelease(d);
    const root = oldRelease(d);
    const e = await removeWithSwap(n, d, 'tree/app', 'list', () => {
      // Its own +i is already cleared by the walk; its parent's may not be yet.
      run('chattr', ['-i', root]);
      renameSync(join(root, 'app'), join(root, 'moved'));
      symlinkSync(app, join(root, 'app'));
    });
    assert.ok(e !== null, 'the removal must not resolve');
    assert.equal(e.code, 'ENOTDIR');
    assert.equal(e.syscall, 'unlinkat');
    assert.equal(e.path, 'tree/app');
    assertLiveSealed(app);
    assert.deepEqual(readdirSync(join(root, 'moved')), [], 'what was listed through the held fd is removed there');
  });

  test('a file swapped for a symlink to a live file after it is looked at: refused at it, the live file stays +i', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmswap');
    const app = liveRelease(d);
    const root = oldRelease(d);
    const e = await removeWithSwap(n, d, 'tree/app/engine.py', 'open', () => {
      run('chattr', ['-i', join(root, 'app'), join(root, 'app', 'engine.py')]);
      renameSync(join(root, 'app', 'engine.py'), join(root, 'app', 'was-engine.py'));
      symlinkSync(join(app, 'engine.py'), join(root, 'app', 'engine.py'));
    });
    assert.ok(e !== null, 'the removal must not resolve');
    assert.equal(e.code, 'ELOOP');
    assert.equal(e.path, 'tree/app/engine.py');
    assertLiveSealed(app);
  });

  test('a file replaced by another file after it is looked at: ESTALE at it (the inode looked at is the only one acted on)', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmswap');
    const app = liveRelease(d);
    const root = oldRelease(d);
    const e = await removeWithSwap(n, d, 'tree/f7', 'open', () => {
      run('chattr', ['-i', root, join(root, 'f7')]);
      renameSync(join(root, 'f7'), join(root, 'was-f7'));
      writeFileSync(join(root, 'f7'), 'planted\n');
      run('chattr', ['+i', join(root, 'f7')]);
    });
    assert.ok(e !== null, 'the removal must not resolve');
    assert.equal(e.code, 'ESTALE');
    assert.equal(e.path, 'tree/f7');
    assert.match(lsattrLetters(join(root, 'f7')), /i/, 'the planted file keeps its flags');
    assertLiveSealed(app);
  });
});
