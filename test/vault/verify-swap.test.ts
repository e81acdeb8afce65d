// An entry of the live tree swapped for a symlink while `vault verify` reads the tree: the native
// pass reads through directory fds and never resolves a path through a symlink, so a swap it could
// have followed (to a copy with the very same content) is reported at that entry, the same way a
// symlink found there at rest is. The addon's gate holds the pass at a known point (a directory
// once listed, or every file read) so the swap happens there, not by chance.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, realpathSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run, tempDir } from '../helpers/vault-factory.js';
import { waitFor } from '../helpers/wait.js';

after(cleanupAll);

const addon = loadNative();

// Up to 30 s: a verify on a busy machine can take longer to reach the gate than 1000 polls of 5 ms.
async function until(cond: () => boolean, what: string): Promise<void> {
  await waitFor(what, 30_000, () => (cond() ? true : null), 5);
}

/**
 * Deploys v1, holds the next verify's pass at `gateAt` (a directory once listed, or "." once every
 * file was read), swaps `entry` of the live tree for a symlink to an identical sealed copy outside
 * the vault, lets the pass go on, and returns verify's problems at `entry`, and those of a verify
 * from scratch afterwards (the symlink at rest).
 */
async function swapDuringVerify(label: string, entry: string, gateAt: string): Promise<{ during: string[][]; after: string[][] }> {
  const tv = await makeVault(label);
  const outside = tempDir(`${label}-outside`);
  const gate = join(outside, 'gate');
  try {
    await tv.vault.deploy((await tv.bundle(1)).path);
    assert.equal((await tv.vault.verify()).ok, true, 'intact before the swap');
    const tree = liveTree(tv.path);
    // The same content, sealed and owned like the original (cp -a keeps modes and owners).
    run('cp', ['-a', join(tree, entry), join(outside, 'copy')]);
    run('chattr', ['-R', '+i', join(outside, 'copy')]);
    mkdirSync(join(outside, 'moved'));
    addon!._inspectGate!(gateAt, gate);
    const verifying = tv.vault.verify({ scope: 'live' });
    await until(() => existsSync(`${gate}.reached`), 'the pass to reach the gate');
    // An entry moves only without +i on its directory (and a directory only without its own: its '..' changes).
    const parent = join(tree, entry, '..');
    run('chattr', ['-i', parent, join(tree, entry)]);
    renameSync(join(tree, entry), join(outside, 'moved', 'original'));
    symlinkSync(join(outside, 'copy'), join(tree, entry));
    run('chattr', ['+i', parent]);
    writeFileSync(gate, '');
    const at = (r: { problems: { path: string; code: string; message: string }[] }) => r.problems.filter((p) => p.path.endsWith(`/tree/${entry}`)).map((p) => [p.code, p.message]);
    const r = await verifying;
    assert.equal(r.ok, false, `verify read ${entry} through the symlink and passed: ${JSON.stringify(r.problems)}`);
    return { during: at(r), after: at(await tv.vault.verify({ scope: 'live' })) };
  } finally {
    if (!existsSync(gate)) writeFileSync(gate, ''); // never leave a pass waiting
    await closeDeps(tv.deps);
  }
}

function ready(t: TestContext): boolean {
  if (needs(t, isRoot(), 'root (chattr)')) return false;
  return !needs(t, typeof addon?._inspectGate === 'function', 'native addon with _inspectGate');
}

describe('vault verify and an entry swapped for a symlink while the pass reads the tree', () => {
  for (const dir of ['phi', 'config']) {
    test(`${dir}/ swapped for a symlink to an identical copy after it was listed, before its files are read: reported at ${dir}`, async (t) => {
      if (!ready(t)) return;
      const { during, after } = await swapDuringVerify(`swap-${dir}`, dir, dir);
      assert.deepEqual(during, [['tampered', 'expected a dir, found a symlink']]);
      assert.deepEqual(after, during, 'the same problem as for the symlink at rest');
    });
  }

  test('phi/ swapped after every file in it was read, before the directories are looked up again: reported at phi', async (t) => {
    if (!ready(t)) return;
    const { during, after } = await swapDuringVerify('swap-late', 'phi', '.');
    assert.deepEqual(during, [['tampered', 'expected a dir, found a symlink']]);
    assert.deepEqual(after, during);
  });

  test('a file swapped for a symlink to an identical copy after its directory was listed: reported at the file', async (t) => {
    if (!ready(t)) return;
    const { during, after } = await swapDuringVerify('swap-file', 'phi/engine.py', 'phi');
    assert.deepEqual(during, [['tampered', 'expected a file, found a symlink']]);
    assert.deepEqual(after, during);
  });

  test('the tree root swapped whole for a sealed copy with a rewritten file while the pass reads it: reported at the tree', async (t) => {
    if (!ready(t)) return;
    const tv = await makeVault('swap-root');
    const outside = tempDir('swap-root-outside');
    const gate = join(outside, 'gate');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const tree = realpathSync(liveTree(tv.path));
      const release = dirname(tree);
      const copy = join(outside, 'copy');
      run('cp', ['-a', tree, copy]);
      writeFileSync(join(copy, 'phi/engine.py'), '# evil\ndef phi(x):\n    return 0\n');
      run('sh', ['-c', 'find "$1" ! -type l -exec chattr +i {} +', 'sh', copy]);
      addon!._inspectGate!('phi', gate);
      const verifying = tv.vault.verify({ scope: 'live' });
      await until(() => existsSync(`${gate}.reached`), 'the pass to reach the gate');
      run('chattr', ['-i', release, tree, copy]);
      renameSync(tree, join(outside, 'original'));
      renameSync(copy, tree);
      run('chattr', ['+i', tree, release]);
      writeFileSync(gate, '');
      const r = await verifying;
      assert.equal(r.ok, false, `verify read the original tree after it was swapped out and passed: ${JSON.stringify(r.problems)}`);
      assert.ok(r.problems.some((p) => /tree\/?$/.test(p.path) && p.message.includes('ESTALE')), JSON.stringify(r.problems));
      const again = await tv.vault.verify({ scope: 'live' });
      assert.ok(again.problems.some((p) => p.path.endsWith('/tree/phi/engine.py')), 'the copy itself is caught from scratch');
    } finally {
      if (!existsSync(gate)) writeFileSync(gate, '');
      await closeDeps(tv.deps);
    }
  });
});
