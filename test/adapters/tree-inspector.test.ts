// The two ways of reading a release tree for verify (docs/VAULT.md#tree-check) on real sealed
// trees: the native pass and the lstat walk observe the same entries, intact and tampered, so
// core's one comparison gives the same problems; the walk reads +i through the flag store it is
// given; a hash failure in the walk is reported for its own file only.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, linkSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { TOLERATED_XATTRS, checkTree, type ExpectedEntry, type ObservedTree } from '../../src/core/tree-check.js';
import { FS_IMMUTABLE_FL, chattrFlagStore, defaultFlagStore, ioctlFlagStore, sealTree, unsealTree } from '../../src/adapters/flags.js';
import type { FlagStore } from '../../src/adapters/flags.js';
import { HashPool } from '../../src/adapters/hash.js';
import type { HashResult } from '../../src/adapters/hash.js';
import { loadNative } from '../../src/adapters/native.js';
import { defaultTreeInspector } from '../../src/adapters/tree-inspector.js';
import type { TreeInspector } from '../../src/adapters/tree-inspector.js';
import { nativeTreeInspector } from '../../src/adapters/tree-inspector-native.js';
import { walkTreeInspector } from '../../src/adapters/tree-inspector-walk.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const hash = new HashPool(2);
const addon = loadNative();
const LIMITS = { maxFileBytes: 1 << 30 };

test('the addon tolerates exactly the LSM labels core lists', (t) => {
  if (needs(t, addon !== null && typeof addon.toleratedXattrs === 'function', 'the native addon')) return;
  assert.deepEqual(addon?.toleratedXattrs?.(), [...TOLERATED_XATTRS]);
});


before(() => hash.warmUp());
after(async () => {
  await hash.close();
  removeTempDirs();
});

const FILES: [string, string, number][] = [['VERSION', 'v1\n', 0o644], ['phi/engine.py', 'print(1)\n', 0o755], ['phi/weights.bin', 'w'.repeat(5000), 0o600], ['empty', '', 0o644]];
const EXPECTED: ExpectedEntry[] = [
  { type: 'file', path: 'VERSION', mode: 0o644, size: 3, sha256: sha('v1\n') },
  { type: 'symlink', path: 'current', target: 'phi/engine.py' },
  { type: 'file', path: 'empty', mode: 0o644, size: 0, sha256: sha('') },
  { type: 'dir', path: 'phi', mode: 0o755 },
  { type: 'file', path: 'phi/engine.py', mode: 0o755, size: 9, sha256: sha('print(1)\n') },
  { type: 'file', path: 'phi/weights.bin', mode: 0o600, size: 5000, sha256: sha('w'.repeat(5000)) },
];

/** A sealed release-like tree matching EXPECTED. */
async function sealedTree(store: FlagStore): Promise<string> {
  const root = join(makeTempDir('inspect'), 'tree');
  mkdirSync(join(root, 'phi'), { recursive: true });
  chmodSync(join(root, 'phi'), 0o755);
  for (const [p, body, mode] of FILES) {
    writeFileSync(join(root, p), body);
    chmodSync(join(root, p), mode);
  }
  symlinkSync('phi/engine.py', join(root, 'current'));
  await sealTree(store, root);
  return root;
}

/**
 * The facts verify compares, which both ways must agree on: every entry's stat, and for an entry
 * the manifest lists with the same type its seal, target and (at the manifest's size) digest. The
 * native pass may read more (seal bits of extras, digests of files of another size); the walk not.
 */
function comparable(t: ObservedTree): unknown {
  const byPath = new Map(EXPECTED.map((e) => [e.path, e]));
  return {
    unlisted: t.unlisted,
    entries: t.entries.map((e) => {
      const want = byPath.get(e.path);
      // Every entry found: its extended attributes, and a regular file's link count.
      const more = e.stat.ok ? { xattrs: e.xattrs, links: e.links } : {};
      if (want === undefined || !e.stat.ok || e.stat.value.type !== want.type) return { path: e.path, stat: e.stat, ...more };
      if (want.type === 'symlink') return { path: e.path, stat: e.stat, target: e.target, ...more };
      if (want.type === 'dir' || e.stat.value.size !== want.size) return { path: e.path, stat: e.stat, sealed: e.sealed, ...more };
      return { path: e.path, stat: e.stat, sealed: e.sealed, digest: e.digest, ...more };
    }),
  };
}

async function observe(inspector: TreeInspector, root: string, early: boolean): Promise<ObservedTree> {
  return inspector.start(root, early ? undefined : EXPECTED, LIMITS).finish(EXPECTED);
}

function ready(t: TestContext): boolean {
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return false;
  return !needs(t, addon !== null && typeof addon.inspectTreeAsync === 'function', 'native addon with inspectTreeAsync');
}

describe('native pass and lstat walk observe the same tree', () => {
  test('intact: same entries, every file hashed and sealed, no problem', async (t) => {
    if (!ready(t)) return;
    const store = ioctlFlagStore()!;
    const root = await sealedTree(store);
    const native = await observe(nativeTreeInspector(addon!), root, false);
    const early = await observe(nativeTreeInspector(addon!), root, true);
    const walk = await observe(walkTreeInspector(store, hash), root, false);
    assert.deepEqual(comparable(native), comparable(walk));
    assert.deepEqual(comparable(early), comparable(walk), 'started before the manifest was known');
    assert.deepEqual(checkTree(EXPECTED, walk), { problems: [], checkedFiles: 4, checkedBytes: 5012 });
    await unsealTree(store, root);
  });

  test('tampered the way root would: both ways give the same problems', async (t) => {
    if (!ready(t)) return;
    const store = ioctlFlagStore()!;
    const root = await sealedTree(store);
    await unsealTree(store, root);
    writeFileSync(join(root, 'VERSION'), 'v2\n'); // same size, other bytes
    chmodSync(join(root, 'phi/engine.py'), 0o777);
    writeFileSync(join(root, 'phi/backdoor.py'), 'import os\n');
    unlinkSync(join(root, 'empty'));
    unlinkSync(join(root, 'current'));
    symlinkSync('/etc/passwd', join(root, 'current'));
    await sealTree(store, root);
    await store.setFlag(join(root, 'phi/weights.bin'), FS_IMMUTABLE_FL, false);
    const native = await observe(nativeTreeInspector(addon!), root, true);
    const walk = await observe(walkTreeInspector(store, hash), root, false);
    assert.deepEqual(comparable(native), comparable(walk));
    const problems = checkTree(EXPECTED, native).problems.map((p) => `${p.code}@${p.path}`);
    assert.deepEqual(problems, ['tampered@current', 'tampered@empty', 'tampered@phi/engine.py', 'tampered@phi/backdoor.py', 'unsealed@phi/weights.bin', 'hash-mismatch@VERSION']);
    assert.deepEqual(checkTree(EXPECTED, walk).problems, checkTree(EXPECTED, native).problems);
    await unsealTree(store, root);
  });
});

describe('choosing the way', () => {
  test('the addon\'s store gets the native pass; the chattr store gets the walk', (t) => {
    assert.equal(defaultTreeInspector(chattrFlagStore(), hash).kind, 'walk');
    if (needs(t, addon !== null, 'native addon')) return;
    assert.equal(defaultTreeInspector(defaultFlagStore(), hash).kind, 'native');
  });

  test('the walk reads +i through the flag store it was given', async (t) => {
    if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return;
    const real = defaultFlagStore();
    const root = await sealedTree(real);
    const lying: FlagStore = {
      kind: 'chattr',
      getFlags: (p) => (p.endsWith('VERSION') ? Promise.resolve(0) : real.getFlags(p)),
      setFlag: (p, f, on) => real.setFlag(p, f, on),
    };
    const observed = await walkTreeInspector(lying, hash).start(root, EXPECTED, LIMITS).finish(EXPECTED);
    assert.deepEqual(checkTree(EXPECTED, observed).problems.map((p) => `${p.code}@${p.path}`), ['unsealed@VERSION']);
    await unsealTree(real, root);
  });

  test('a hash failure in the walk is its own file\'s problem; the rest of its batch is still compared', async (t) => {
    if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return;
    const real = defaultFlagStore();
    const root = await sealedTree(real);
    const failing = {
      hashFiles(paths: string[]): Promise<HashResult[]> {
        const bad = paths.find((p) => p.endsWith('engine.py'));
        if (bad !== undefined) return Promise.reject(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
        return hash.hashFiles(paths);
      },
    } as unknown as HashPool;
    const observed = await walkTreeInspector(real, failing).start(root, EXPECTED, LIMITS).finish(EXPECTED);
    const r = checkTree(EXPECTED, observed);
    assert.deepEqual(r.problems.map((p) => `${p.code}@${p.path}`), ['not-permitted@phi/engine.py']);
    assert.equal(r.checkedFiles, 4);
    await unsealTree(real, root);
  });
});

// The native reading's check() answers an intact tree from its records; every single change must
// still reach core's checkTree and give exactly its problems (a change the records show, the shortcut must refuse).
describe('native check(): the intact shortcut never hides a change', () => {
  const CHANGES: [string, (root: string, store: FlagStore) => Promise<void> | void, string[]][] = [
    ['none', () => undefined, []],
    ['same-size rewrite', (r) => writeFileSync(join(r, 'VERSION'), 'v2\n'), ['hash-mismatch@VERSION']],
    ['other size', (r) => writeFileSync(join(r, 'phi/engine.py'), 'print(12)\n'), ['size-mismatch@phi/engine.py']],
    ['file mode', (r) => chmodSync(join(r, 'phi/weights.bin'), 0o640), ['tampered@phi/weights.bin']],
    ['directory mode', (r) => chmodSync(join(r, 'phi'), 0o700), ['tampered@phi']],
    ['extra file', (r) => writeFileSync(join(r, 'phi/zz.py'), ''), ['tampered@phi/zz.py']],
    ['extra file sorting before /', (r) => writeFileSync(join(r, 'phi.py'), ''), ['tampered@phi.py']],
    ['missing file', (r) => unlinkSync(join(r, 'empty')), ['tampered@empty']],
    ['symlink retargeted', (r) => (unlinkSync(join(r, 'current')), symlinkSync('VERSION', join(r, 'current'))), ['tampered@current']],
    ['file replaced by a directory', (r) => (unlinkSync(join(r, 'empty')), mkdirSync(join(r, 'empty'))), ['tampered@empty']],
    ['hard link', (r) => linkSync(join(r, 'VERSION'), join(r, '..', 'outside')), ['tampered@VERSION']],
    ['extended attribute', (r) => void spawnSync('setfattr', ['-n', 'user.note', '-v', 'x', join(r, 'phi/engine.py')]), ['tampered@phi/engine.py']],
    ['file unsealed', async (r, store) => void (await store.setFlag(join(r, 'empty'), FS_IMMUTABLE_FL, false)), ['unsealed@empty']],
    ['directory unsealed', async (r, store) => void (await store.setFlag(join(r, 'phi'), FS_IMMUTABLE_FL, false)), ['unsealed@phi']],
    ['file given to another user', (r) => chownSync(join(r, 'phi/weights.bin'), 65534, 0), ['tampered@phi/weights.bin']],
    ['directory given to another group', (r) => chownSync(join(r, 'phi'), 0, 65534), ['tampered@phi']],
    ['symlink given to another user', (r) => lchownSync(join(r, 'current'), 65534, 0), ['tampered@current']],
  ];
  for (const [name, change, expected] of CHANGES) {
    test(name, async (t) => {
      if (!ready(t)) return;
      const store = ioctlFlagStore()!;
      const root = await sealedTree(store);
      // An unsealing change is made on the sealed tree; every other one before the tree is sealed again.
      const onSealed = name.endsWith('unsealed');
      await unsealTree(store, root);
      if (!onSealed) await change(root, store);
      await sealTree(store, root);
      if (onSealed) await change(root, store);
      for (const early of [true, false]) {
        const reading = nativeTreeInspector(addon!).start(root, early ? undefined : EXPECTED, LIMITS);
        const checked = await reading.check(EXPECTED);
        const full = checkTree(EXPECTED, await reading.finish(EXPECTED));
        assert.deepEqual(checked, full, `${name}, early ${early}`);
        assert.deepEqual(checked.problems.map((p) => `${p.code}@${p.path}`), expected);
      }
      await unsealTree(store, root);
    });
  }
});
