// removeTree (src/vault/context.ts, src/vault/small-tree.ts): a tree that may hold +i entries is
// deleted whole, a small plain one with synchronous calls, anything else the general way; a symlink
// inside it is deleted, never followed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { seal, sealTree } from '../../src/adapters/flags.js';
import { removeTree } from '../../src/vault/context.js';
import type { VaultCtx } from '../../src/vault/context.js';
import { removeSmallTree, SMALL_TREE_MAX } from '../../src/vault/small-tree.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { makeDeps } from '../helpers/vault-factory.js';

after(removeTempDirs);

/** A release-like tree of `files` files in data/, a symlink to `outside`, all sealed. */
async function sealedTree(root: string, files: number, outside: string): Promise<void> {
  mkdirSync(join(root, 'tree', 'data'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(root, 'tree', 'data', `f${i}`), `${i}\n`);
  writeFileSync(join(root, 'manifest.json'), '{}');
  symlinkSync(outside, join(root, 'tree', 'out'));
  const flags = makeDeps().flags;
  await sealTree(flags, join(root, 'tree'));
  await seal(flags, [join(root, 'manifest.json'), root]);
}

describe('removeTree', () => {
  const deps = makeDeps();
  const ctx = { deps } as unknown as VaultCtx;

  for (const [label, files] of [
    ['small (synchronous calls)', 20],
    ['larger than the synchronous limit (the general way)', SMALL_TREE_MAX + 10],
  ] as const) {
    test(`a sealed ${label} tree is deleted, and what its symlink points to is left alone`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const base = makeTempDir('remove-tree');
      const outside = join(base, 'outside');
      mkdirSync(outside);
      writeFileSync(join(outside, 'keep'), 'not part of the tree\n');
      const root = join(base, 'trash');
      await sealedTree(root, files, outside);
      if (files >= SMALL_TREE_MAX) {
        assert.equal(await removeSmallTree(deps.flags, root), false);
        assert.equal(existsSync(join(root, 'tree', 'data', 'f0')), true, 'nothing deleted by the synchronous way');
      }
      await removeTree(ctx, root);
      assert.equal(existsSync(root), false);
      assert.deepEqual(readdirSync(outside), ['keep']);
    });
  }

  test('a tree holding a fifo is left to the general way and still deleted', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const base = makeTempDir('remove-tree-fifo');
    const root = join(base, 'trash');
    await sealedTree(root, 3, base);
    spawnSync('chattr', ['-i', join(root, 'tree'), root]);
    assert.equal(spawnSync('mkfifo', [join(root, 'tree', 'pipe')]).status, 0);
    assert.equal(await removeSmallTree(deps.flags, root), false);
    assert.equal(existsSync(join(root, 'tree', 'data', 'f0')), true, 'nothing deleted by the synchronous way');
    await removeTree(ctx, root);
    assert.equal(existsSync(root), false);
  });
});
