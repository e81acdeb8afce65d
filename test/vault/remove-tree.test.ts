// Removing a sealed release tree from staging/ never lifts +i outside it: the tree is deleted through
// directory fds (native/src/remove-tree.c), so a directory of the tree swapped for a symlink into the
// live release is unlinked, never followed. Real chattr, real files, lsattr to read the flags back.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { defaultFlagStore, sealTree } from '../../src/adapters/flags.js';
import type { FlagStore } from '../../src/adapters/flags.js';
import { loadNative } from '../../src/adapters/native.js';
import type { NativeAddon, NativeSystemError } from '../../src/adapters/native.js';
import { SentinelError } from '../../src/core/errors.js';
import { makeCtx, removeTree } from '../../src/vault/context.js';
import type { VaultConfig } from '../../src/vault/layout.js';
import type { VaultDeps } from '../../src/vault/types.js';
import { errorOf, lsattrLetters } from '../helpers/attrs.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

after(() => removeTempDirs());

const addon = loadNative();

function ready(t: TestContext): NativeAddon | null {
  if (needs(t, addon !== null && typeof addon.removeTreeAtAsync === 'function', 'native addon with removeTreeAtAsync (npm run install)')) return null;
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return null;
  return addon;
}

function chattr(args: string[]): void {
  const r = spawnSync('chattr', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `chattr ${args.join(' ')}: ${r.stderr}`);
}

/** <d>/live/app/{engine.py,lib/core.py} sealed, as a live release is; returns the live app dir. */
function liveRelease(d: string): string {
  const app = join(d, 'live', 'app');
  mkdirSync(join(app, 'lib'), { recursive: true });
  writeFileSync(join(app, 'engine.py'), 'live engine\n');
  writeFileSync(join(app, 'lib', 'core.py'), 'live core\n');
  chattr(['-R', '+i', join(d, 'live')]);
  return app;
}

function assertLiveSealed(app: string): void {
  for (const p of [app, join(app, 'engine.py'), join(app, 'lib'), join(app, 'lib', 'core.py')]) {
    assert.ok(existsSync(p), `${p} still exists`);
    assert.match(lsattrLetters(p), /i/, `${p} still +i`);
  }
  assert.equal(readFileSync(join(app, 'engine.py'), 'utf8'), 'live engine\n');
}

/** <d>/staging/old: a release tree with app/{engine.py,lib/core.py}, sealed like a kept release. */
async function stagedRelease(d: string): Promise<string> {
  const old = join(d, 'staging', 'old');
  mkdirSync(join(old, 'app', 'lib'), { recursive: true });
  writeFileSync(join(old, 'app', 'engine.py'), 'old engine\n');
  writeFileSync(join(old, 'app', 'lib', 'core.py'), 'old core\n');
  await sealTree(defaultFlagStore(), old);
  return old;
}

const ctxWith = (vault: string, flags: FlagStore) => makeCtx(vault, {} as VaultConfig, { flags } as VaultDeps);

describe('removeTree of a staged release', () => {
  test('a directory swapped for a symlink into the live release once the directories are unsealed: live stays +i', async (t) => {
    if (ready(t) === null) return;
    const d = makeTempDir('rmtree');
    const app = liveRelease(d);
    const old = await stagedRelease(d);
    // The real store; right after it unseals the tree's directories (the by-path walk's first step),
    // old/app is swapped for a symlink to the live app directory, as a uid-0 process without
    // CAP_LINUX_IMMUTABLE can do then. The fd walk does not go through this store at all.
    const real = defaultFlagStore();
    let swapped = false;
    const swapAfter = (paths: string[], on: boolean): void => {
      if (swapped || on || !paths.includes(join(old, 'app'))) return;
      swapped = true;
      renameSync(join(old, 'app'), join(old, 'moved'));
      symlinkSync(app, join(old, 'app'));
    };
    const store: FlagStore = {
      kind: real.kind,
      getFlags: (p) => real.getFlags(p),
      setFlag: async (p, flag, on) => {
        const r = await real.setFlag(p, flag, on);
        swapAfter([p], on);
        return r;
      },
      setFlagMany: async (ps, flag, on) => {
        const r = await real.setFlagMany!(ps, flag, on);
        swapAfter(ps, on);
        return r;
      },
    };
    await removeTree(ctxWith(d, store), old).catch(() => undefined);
    assertLiveSealed(app);
  });

  test('a sealed tree is removed; missing is fine; a failure names where it happened', async (t) => {
    if (ready(t) === null) return;
    const d = makeTempDir('rmtree');
    const old = await stagedRelease(d);
    const ctx = ctxWith(d, defaultFlagStore());
    await removeTree(ctx, old);
    assert.equal(existsSync(old), false);
    await removeTree(ctx, old);
    await removeTree(ctx, join(d, 'no-such-dir', 'old'));
    // Deeper than the walk goes (256): refused, with the entry's absolute path.
    let deep = join(d, 'staging', 'deep');
    const top = deep;
    mkdirSync(deep);
    for (let i = 0; i < 257; i++) mkdirSync((deep = join(deep, 'd')));
    await assert.rejects(removeTree(ctx, top), (e: unknown) => {
      assert.ok(e instanceof SentinelError);
      assert.match(e.message, /cannot remove a directory tree \(ELOOP\)/);
      assert.ok(e.where?.startsWith(`${top}/d/d/`), e.where);
      return true;
    });
  });
});

describe('removeTreeAtAsync (native)', () => {
  async function withDir<T>(dir: string, fn: (fd: number) => Promise<T> | T): Promise<T> {
    const fd = openSync(dir, 'r');
    try {
      return await fn(fd);
    } finally {
      closeSync(fd);
    }
  }

  test('a directory entry that is a symlink to a sealed directory outside: unlinked, the outside untouched', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmtree');
    const app = liveRelease(d);
    const old = await stagedRelease(d);
    chattr(['-i', old]);
    chattr(['-R', '-i', join(old, 'app')]);
    renameSync(join(old, 'app'), join(old, 'moved'));
    symlinkSync(app, join(old, 'app'));
    symlinkSync(join(app, 'engine.py'), join(old, 'moved', 'engine-link'));
    await sealTree(defaultFlagStore(), old);
    await withDir(join(d, 'staging'), (fd) => n.removeTreeAtAsync!(fd, 'old'));
    assert.equal(existsSync(old), false);
    assertLiveSealed(app);
  });

  test('removes a sealed tree of nested dirs, files, symlinks, empty dirs, a fifo, +a entries', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmtree');
    const root = join(d, 'tree');
    mkdirSync(join(root, 'a', 'b', 'c'), { recursive: true });
    mkdirSync(join(root, 'empty'));
    mkdirSync(join(root, 'a', 'empty'));
    writeFileSync(join(root, 'top.txt'), 'top');
    writeFileSync(join(root, 'a', 'b', 'c', 'deep.txt'), 'deep');
    writeFileSync(join(root, 'a', 'log'), 'appended');
    symlinkSync('../top.txt', join(root, 'a', 'up'));
    symlinkSync('/nonexistent', join(root, 'dangling'));
    assert.equal(spawnSync('mkfifo', [join(root, 'a', 'fifo')]).status, 0);
    chattr(['+a', join(root, 'a', 'log')]);
    spawnSync('chattr', ['-R', '-f', '+i', root]); // exits 1 over the symlinks and the fifo, which take no flags
    assert.match(lsattrLetters(join(root, 'a', 'b', 'c', 'deep.txt')), /i/);
    assert.match(lsattrLetters(join(root, 'a', 'log')), /a/);
    await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree'));
    assert.equal(existsSync(root), false);
    await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree'));
  });

  test('a single sealed file, a symlink to a sealed file (the file stays), bad names', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmtree');
    writeFileSync(join(d, 'f'), 'x');
    writeFileSync(join(d, 'kept'), 'k');
    chattr(['+i', join(d, 'f')]);
    chattr(['+i', join(d, 'kept')]);
    symlinkSync(join(d, 'kept'), join(d, 'link'));
    await withDir(d, async (fd) => {
      await n.removeTreeAtAsync!(fd, 'f');
      await n.removeTreeAtAsync!(fd, 'link');
      for (const bad of ['', '.', '..', 'a/b']) assert.equal(errorOf(() => n.removeTreeAtAsync!(fd, bad)).code, 'EINVAL', bad);
    });
    assert.equal(existsSync(join(d, 'f')), false);
    assert.throws(() => lstatSync(join(d, 'link')));
    assert.match(lsattrLetters(join(d, 'kept')), /i/);
  });

  test('a file hard-linked to a file sealed outside keeps its flags: EPERM with its path, the outside untouched', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmtree');
    const root = join(d, 'tree');
    mkdirSync(join(root, 'a'), { recursive: true });
    writeFileSync(join(d, 'live.py'), 'live');
    linkSync(join(d, 'live.py'), join(root, 'a', 'hl'));
    chattr(['+i', join(d, 'live.py')]);
    await withDir(d, (fd) =>
      assert.rejects(n.removeTreeAtAsync!(fd, 'tree'), (e: NativeSystemError) => {
        assert.equal(e.code, 'EPERM');
        assert.equal(e.path, 'tree/a/hl');
        return true;
      }),
    );
    assert.match(lsattrLetters(join(d, 'live.py')), /i/);
    assert.equal(readFileSync(join(d, 'live.py'), 'utf8'), 'live');
  });

  test('a bind mount inside the tree (same device, another mount) is refused with its path', async (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = makeTempDir('rmtree');
    const app = liveRelease(d);
    const root = join(d, 'tree');
    mkdirSync(join(root, 'a', 'm'), { recursive: true });
    const m = spawnSync('mount', ['--bind', app, join(root, 'a', 'm')], { encoding: 'utf8' });
    if (needs(t, m.status === 0, `mount --bind (${m.stderr.trim()})`)) return;
    try {
      await withDir(d, (fd) =>
        assert.rejects(n.removeTreeAtAsync!(fd, 'tree'), (e: NativeSystemError) => {
          assert.equal(e.code, 'EXDEV');
          assert.equal(e.path, 'tree/a/m');
          return true;
        }),
      );
      assertLiveSealed(app);
    } finally {
      spawnSync('umount', [join(root, 'a', 'm')]);
    }
    await withDir(d, (fd) => n.removeTreeAtAsync!(fd, 'tree'));
    assert.equal(existsSync(root), false);
    assertLiveSealed(app);
  });
});
