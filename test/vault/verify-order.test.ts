// The order in which `vault verify` names what it finds, whichever way the live tree is read and
// answered (the native pass with the addon's intact answer, the full comparison, the lstat walk):
// the vault's own paths, the live release's directory, its tree, then what is unlisted in the
// vault's directories. Verify reads the release directory and lists the vault while the tree pass
// hashes; what it names, and in which order, is what it named when it read them after the pass. A
// release whose signatures do not verify is named by that alone, not by its directory's shape.
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, run } from '../helpers/vault-factory.js';
import type { TestVault, TreeSpec } from '../helpers/vault-factory.js';
import { walkTreeInspector } from '../../src/adapters/tree-inspector-walk.js';
import { openVault } from '../../src/vault/index.js';
import type { VerifyReport } from '../../src/vault/types.js';

after(cleanupAll);

// No symlink: the addon answers an intact tree of plain files and directories itself.
const TREE: TreeSpec = [
  { type: 'dir', path: 'a' },
  { type: 'file', path: 'a/one', content: 'one\n' },
  { type: 'file', path: 'two', content: 'two\n' },
];

const named = (r: VerifyReport): string[] => r.problems.map((p) => `${p.code}@${p.path}`);

/** Runs `change` on `path` with its +i lifted, then seals it again. */
function unsealed(path: string, change: () => void): void {
  run('chattr', ['-i', path]);
  try {
    change();
  } finally {
    run('chattr', ['+i', path]);
  }
}

/** Every answer verify gives for the vault as it is: both scopes, the native pass and the lstat walk. */
async function answers(tv: TestVault): Promise<Record<string, VerifyReport>> {
  const walked = await openVault(tv.path, { ...tv.deps, inspector: walkTreeInspector(tv.deps.flags, tv.deps.hash) });
  return {
    'native, live only': await tv.vault.verify({ scope: 'live' }),
    'native, all': await tv.vault.verify(),
    'walk, live only': await walked.verify({ scope: 'live' }),
    'walk, all': await walked.verify(),
  };
}

/** A vault with TREE deployed, its live release directory (`releases/<name>`) and the vault's own extras planted. */
async function plantedVault(label: string): Promise<{ tv: TestVault; rel: string }> {
  const tv = await makeVault(label);
  await tv.vault.deploy((await tv.bundle(1, TREE)).path);
  for (const [name, r] of Object.entries(await answers(tv))) assert.deepEqual(named(r), [], `${name}: intact before the changes`);
  const rel = readlinkSync(join(tv.path, 'current'));
  unsealed(join(tv.path, rel), () => writeFileSync(join(tv.path, rel, 'notes'), 'planted\n'));
  run('chattr', ['-i', join(tv.path, rel, 'signatures.json')]);
  unsealed(tv.path, () => writeFileSync(join(tv.path, 'extra.txt'), 'planted\n'));
  unsealed(join(tv.path, 'state'), () => writeFileSync(join(tv.path, 'state', 'stray'), 'planted\n'));
  return { tv, rel };
}

describe('vault verify names its problems in one order', () => {
  test('the live release directory, then the vault listing, the tree intact (the addon answers it)', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { tv, rel } = await plantedVault('order-intact');
    try {
      const want = [`tampered@${rel}/notes`, `unsealed@${rel}/signatures.json`, 'tampered@extra.txt', 'tampered@state/stray'];
      for (const [name, r] of Object.entries(await answers(tv))) {
        assert.deepEqual(named(r), want, name);
        assert.equal(r.checkedFiles, 2, `${name}: the tree was compared`);
      }
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('the live release directory, its tree, then the vault listing, a file rewritten', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { tv, rel } = await plantedVault('order-tree');
    try {
      const file = join(tv.path, rel, 'tree', 'two');
      unsealed(file, () => writeFileSync(file, 'TWO\n'));
      const want = [`tampered@${rel}/notes`, `unsealed@${rel}/signatures.json`, `hash-mismatch@${rel}/tree/two`, 'tampered@extra.txt', 'tampered@state/stray'];
      for (const [name, r] of Object.entries(await answers(tv))) assert.deepEqual(named(r), want, name);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a live manifest that no longer verifies: named alone at its release, then the vault listing', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { tv, rel } = await plantedVault('order-signature');
    try {
      const manifest = join(tv.path, rel, 'manifest.json');
      const bytes = readFileSync(manifest);
      const at = bytes.indexOf('"created":"') + 11;
      bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
      unsealed(manifest, () => writeFileSync(manifest, bytes));
      // The default scope also names the stored bundle, which no verified release can vouch for now.
      const bundle = `bad-signature@bundles/${rel.slice('releases/'.length)}.bundle`;
      for (const [name, r] of Object.entries(await answers(tv))) {
        const want = [`bad-signature@${rel}`, 'tampered@extra.txt', 'tampered@state/stray', ...(name.endsWith('all') ? [bundle] : [])];
        assert.deepEqual(named(r), want, `${name}: ${JSON.stringify(r.problems)}`);
      }
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
