// A directory of the live tree swapped for a symlink while `vault verify` reads the tree: the
// native pass holds the directories it walks open and never resolves a path through a symlink, so
// a swap it could have followed (to a directory with the very same content) is reported at the
// directory, the same way a symlink found there at rest is. The addon's gate holds the pass at
// the directory once it has read it, so the swap happens at a known point, not by chance.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run, tempDir } from '../helpers/vault-factory.js';

after(cleanupAll);

const addon = loadNative();

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('vault verify and a directory swapped for a symlink during the pass', () => {
  for (const dir of ['phi', 'config']) {
    test(`${dir}/ swapped for a symlink to an identical copy after the pass read it: reported at ${dir}`, async (t) => {
      if (needs(t, isRoot(), 'root (chattr)')) return;
      if (needs(t, typeof addon?._inspectGate === 'function', 'native addon with _inspectGate')) return;
      const tv = await makeVault(`swap-${dir}`);
      const outside = tempDir(`swap-${dir}-outside`);
      const gate = join(outside, 'gate');
      try {
        await tv.vault.deploy((await tv.bundle(1)).path);
        assert.equal((await tv.vault.verify()).ok, true, 'intact before the swap');
        const tree = liveTree(tv.path);
        // The same content, sealed and owned like the original (cp -a keeps modes and owners).
        run('cp', ['-a', join(tree, dir), join(outside, 'copy')]);
        run('chattr', ['-R', '+i', join(outside, 'copy')]);
        mkdirSync(join(outside, 'moved'));
        addon!._inspectGate!(dir, gate);
        const verifying = tv.vault.verify({ scope: 'live' });
        await until(() => existsSync(`${gate}.reached`), 'the pass to reach the gate');
        // A directory moves only without +i (its '..' changes); the original stays whole, outside the tree.
        run('chattr', ['-i', tree, join(tree, dir)]);
        renameSync(join(tree, dir), join(outside, 'moved', dir));
        symlinkSync(join(outside, 'copy'), join(tree, dir));
        run('chattr', ['+i', tree]);
        writeFileSync(gate, '');
        const r = await verifying;
        assert.equal(r.ok, false, `verify read ${dir}/ through the symlink and passed: ${JSON.stringify(r.problems)}`);
        const at = r.problems.filter((p) => p.path.endsWith(`/tree/${dir}`));
        assert.deepEqual(at.map((p) => [p.code, p.message]), [['tampered', 'expected a dir, found a symlink']]);
        // The same answer as for the symlink at rest, read again from scratch.
        const again = await tv.vault.verify({ scope: 'live' });
        assert.deepEqual(again.problems.filter((p) => p.path.endsWith(`/tree/${dir}`)), at);
      } finally {
        if (!existsSync(gate)) writeFileSync(gate, ''); // never leave a pass waiting
        await closeDeps(tv.deps);
      }
    });
  }
});
