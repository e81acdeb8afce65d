// Both flag stores (ioctl addon, chattr/lsattr) against the real kernel and tools: round trips read
// back with lsattr, EPERM on sealed paths, tree counts, and the two error codes produced for real:
// no-immutable-support on ramfs, not-permitted without CAP_LINUX_IMMUTABLE.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { rejection } from '../helpers/core-factory.js';
import {
  FS_IMMUTABLE_FL, areImmutable, chattrFlagStore, defaultFlagStore, ioctlFlagStore, isImmutable, probeImmutableSupport, seal, sealTree,
  unseal, unsealTree,
} from '../../src/adapters/flags.js';
import type { FlagStore } from '../../src/adapters/flags.js';
import { lsattrLetters } from '../helpers/attrs.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const mounts: string[] = [];
const haveChattr = spawnSync('chattr', ['-V'], { encoding: 'utf8' }).error === undefined;

const scratch = (base?: string): string => makeTempDir('flags', base);

after(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  removeTempDirs();
});

function lsattrHasI(path: string): boolean {
  return lsattrLetters(path).includes('i');
}

// A small release-like tree: nested dirs, files, a file symlink and a dir symlink.
function makeTree(root: string): { files: number; dirs: number; links: string[] } {
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  mkdirSync(join(root, 'c'));
  writeFileSync(join(root, 'top.txt'), 'top');
  writeFileSync(join(root, 'a', 'one'), '1');
  writeFileSync(join(root, 'a', 'b', 'two'), '2');
  writeFileSync(join(root, 'c', 'three'), '3');
  symlinkSync('a/one', join(root, 'link-file'));
  symlinkSync('a', join(root, 'link-dir'));
  return { files: 4, dirs: 4 /* root, a, a/b, c */, links: [join(root, 'link-file'), join(root, 'link-dir')] };
}

const stores: [string, () => FlagStore | null][] = [
  ['ioctl', () => ioctlFlagStore()],
  ['chattr', () => (haveChattr ? chattrFlagStore() : null)],
];

function storeOrSkip(t: TestContext, name: string, make: () => FlagStore | null): FlagStore | null {
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return null;
  const s = make();
  if (needs(t, s !== null, name === 'ioctl' ? 'native addon (npx node-gyp rebuild --directory=native)' : 'chattr/lsattr')) return null;
  return s;
}

for (const [name, make] of stores) {
  describe(`${name} flag store`, () => {
    test('set, read back with lsattr -d, clear', async (t) => {
      const store = storeOrSkip(t, name, make);
      if (store === null) return;
      assert.equal(store.kind, name);
      const d = scratch();
      const f = join(d, 'file');
      writeFileSync(f, 'x');
      assert.equal(await isImmutable(store, f), false);
      await store.setFlag(f, FS_IMMUTABLE_FL, true);
      assert.equal(lsattrHasI(f), true);
      assert.equal(await isImmutable(store, f), true);
      await store.setFlag(f, FS_IMMUTABLE_FL, false);
      assert.equal(lsattrHasI(f), false);
    });

    test('sealed file and directory refuse writes (EPERM); unseal lifts it', async (t) => {
      const store = storeOrSkip(t, name, make);
      if (store === null) return;
      const d = scratch();
      const f = join(d, 'file');
      writeFileSync(f, 'x');
      await seal(store, [f, d]);
      assert.throws(() => writeFileSync(f, 'changed'), { code: 'EPERM' });
      assert.throws(() => writeFileSync(join(d, 'added'), 'x'), { code: 'EPERM' });
      assert.throws(() => unlinkSync(f), { code: 'EPERM' });
      await unseal(store, [d, f]);
      writeFileSync(join(d, 'added'), 'x');
      writeFileSync(f, 'changed');
    });

    test('sealTree / unsealTree: counts, every file and dir, symlinks skipped', async (t) => {
      const store = storeOrSkip(t, name, make);
      if (store === null) return;
      const root = join(scratch(), 'release');
      mkdirSync(root);
      const shape = makeTree(root);
      spawnSync('sync');
      assert.equal(await sealTree(store, root), shape.files + shape.dirs);
      for (const p of ['', 'a', 'a/b', 'c', 'top.txt', 'a/one', 'a/b/two', 'c/three']) {
        assert.equal(lsattrHasI(join(root, p)), true, `${p || '.'} is sealed`);
      }
      assert.throws(() => writeFileSync(join(root, 'a', 'b', 'new'), 'x'), { code: 'EPERM' });
      assert.equal(await unsealTree(store, root), shape.files + shape.dirs);
      for (const p of ['', 'a', 'a/b', 'c', 'top.txt', 'a/one', 'a/b/two', 'c/three']) {
        assert.equal(lsattrHasI(join(root, p)), false, `${p || '.'} is unsealed`);
      }
    });

    test('errors carry the path: missing file, symlink, fifo in a tree', async (t) => {
      const store = storeOrSkip(t, name, make);
      if (store === null) return;
      const d = scratch();
      const missing = join(d, 'missing');
      assert.deepEqual(await rejection(store.getFlags(missing)), { code: 'not-found', where: missing });
      assert.deepEqual(await rejection(store.setFlag(missing, FS_IMMUTABLE_FL, true)), { code: 'not-found', where: missing });
      writeFileSync(join(d, 'target'), 'x');
      symlinkSync('target', join(d, 'link'));
      assert.deepEqual(await rejection(store.getFlags(join(d, 'link'))), { code: 'bad-path', where: join(d, 'link') });
      assert.equal(lsattrHasI(join(d, 'target')), false);
      assert.equal(spawnSync('mkfifo', [join(d, 'fifo')]).status, 0);
      assert.deepEqual(await rejection(sealTree(store, d)), { code: 'bad-path', where: join(d, 'fifo') });
    });
  });
}

describe('both stores', () => {
  test('agree on the flags of every entry of a tree', async (t) => {
    const a = storeOrSkip(t, 'ioctl', () => ioctlFlagStore());
    const b = storeOrSkip(t, 'chattr', () => (haveChattr ? chattrFlagStore() : null));
    if (a === null || b === null) return;
    const root = join(scratch(), 'tree');
    mkdirSync(root);
    makeTree(root);
    await a.setFlag(join(root, 'a', 'one'), FS_IMMUTABLE_FL, true);
    await b.setFlag(join(root, 'c'), FS_IMMUTABLE_FL, true);
    const paths = ['', 'a', 'a/b', 'c', 'top.txt', 'a/one', 'a/b/two', 'c/three'].map((p) => join(root, p));
    const viaIoctl = await a.getFlagsMany!(paths);
    const viaChattr = await b.getFlagsMany!(paths);
    assert.deepEqual(viaChattr, viaIoctl);
    const sealed = [false, false, false, true, false, true, false, false];
    assert.deepEqual(viaIoctl.map((f) => (f & FS_IMMUTABLE_FL) !== 0), sealed);
    assert.deepEqual(await areImmutable(a, paths), sealed, 'statx read of the ioctl store');
    assert.deepEqual(await areImmutable(b, paths), sealed);
    assert.deepEqual(await rejection(areImmutable(a, [paths[0]!, join(root, 'link-dir')])), { code: 'bad-path', where: join(root, 'link-dir') });
    await unsealTree(b, root);
  });

  test('10,000 files on tmpfs: sealTree and unsealTree count them all (no process per file)', async (t) => {
    const store = storeOrSkip(t, 'ioctl', () => ioctlFlagStore());
    if (store === null) return;
    if (needs(t, existsSync('/dev/shm'), 'tmpfs at /dev/shm')) return;
    const root = scratch('/dev/shm');
    for (let d = 0; d < 100; d++) {
      const dir = join(root, `d${d}`);
      mkdirSync(dir);
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `f${f}`), `${d}/${f}`);
    }
    assert.equal(await sealTree(store, root), 10_000 + 101);
    assert.equal(lsattrHasI(join(root, 'd99', 'f99')), true);
    assert.equal(lsattrHasI(root), true);
    assert.equal(await unsealTree(store, root), 10_000 + 101);
    assert.equal(readdirSync(join(root, 'd0')).length, 100);
    assert.equal(lsattrHasI(join(root, 'd50', 'f7')), false);
  });
});

describe('store selection', () => {
  test('the ioctl store when the addon is built; chattr when SENTINEL_NO_NATIVE=1', (t) => {
    const flagsModule = fileURLToPath(new URL('../../src/adapters/flags.js', import.meta.url));
    const code = `import(${JSON.stringify(flagsModule)}).then((F) => console.log(F.defaultFlagStore().kind))`;
    const kindWith = (env: NodeJS.ProcessEnv): string => {
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(kindWith({ ...process.env, SENTINEL_NO_NATIVE: '1' }), 'chattr');
    if (needs(t, ioctlFlagStore() !== null, 'native addon')) return;
    assert.equal(kindWith({ ...process.env, SENTINEL_NO_NATIVE: '' }), 'ioctl');
  });
});

describe('real refusals', () => {
  test('ramfs has no immutable flag: no-immutable-support from both stores and the probe', async (t) => {
    if (needs(t, isRoot(), 'root (mount)')) return;
    const mnt = scratch();
    const r = spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt], { encoding: 'utf8' });
    if (needs(t, r.status === 0, `ramfs mount (${r.stderr.trim()})`)) return;
    mounts.push(mnt);
    try {
      const f = join(mnt, 'file');
      writeFileSync(f, 'x');
      for (const store of [ioctlFlagStore(), haveChattr ? chattrFlagStore() : null]) {
        if (store === null) continue;
        assert.deepEqual(await rejection(store.setFlag(f, FS_IMMUTABLE_FL, true)), { code: 'no-immutable-support', where: f }, store.kind);
        assert.deepEqual(await rejection(store.getFlags(f)), { code: 'no-immutable-support', where: f }, store.kind);
        assert.deepEqual(await rejection(probeImmutableSupport(mnt, store)), { code: 'no-immutable-support', where: mnt }, store.kind);
      }
      assert.deepEqual(readdirSync(mnt), ['file'], 'the probe removed its scratch file');
    } finally {
      spawnSync('umount', [mnt]);
      mounts.splice(mounts.indexOf(mnt), 1);
    }
  });

  test('without CAP_LINUX_IMMUTABLE: not-permitted from both stores and the probe', (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const setpriv = spawnSync('setpriv', ['--version']).error === undefined;
    if (needs(t, setpriv, 'setpriv (util-linux)')) return;
    const d = scratch();
    const f = join(d, 'file');
    writeFileSync(f, 'x');
    const flagsModule = fileURLToPath(new URL('../../src/adapters/flags.js', import.meta.url));
    const script = join(d, 'child.mjs');
    writeFileSync(script, `
      import * as F from ${JSON.stringify(flagsModule)};
      const out = {};
      const stores = [F.ioctlFlagStore(), F.chattrFlagStore()].filter((s) => s !== null);
      for (const s of stores) {
        const r = {};
        for (const [k, p] of [['set', s.setFlag(process.argv[2], F.FS_IMMUTABLE_FL, true)], ['probe', F.probeImmutableSupport(process.argv[3], s)]]) {
          try { await p; r[k] = 'ok'; } catch (e) { r[k] = [e.code, e.where]; }
        }
        out[s.kind] = r;
      }
      console.log(JSON.stringify(out));
    `);
    const r = spawnSync('setpriv', ['--bounding-set', '-linux_immutable', '--inh-caps', '-all', process.execPath, script, f, d], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.deepEqual(out.chattr, { set: ['not-permitted', f], probe: ['not-permitted', d] });
    if (ioctlFlagStore() !== null) assert.deepEqual(out.ioctl, { set: ['not-permitted', f], probe: ['not-permitted', d] });
    assert.equal(lsattrHasI(f), false);
    assert.deepEqual(readdirSync(d).sort(), ['child.mjs', 'file'], 'the probe removed its scratch file');
  });

  test('probe passes on ext4 and tmpfs and leaves nothing behind', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    for (const base of [tmpdir(), '/dev/shm']) {
      if (!existsSync(base)) continue;
      const d = scratch(base);
      await probeImmutableSupport(d, defaultFlagStore());
      assert.deepEqual(readdirSync(d), []);
    }
  });
});
