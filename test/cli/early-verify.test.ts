// `sentinel vault verify VAULT` starts the live tree's native pass before the program is loaded
// (src/cli/early-verify.ts) under a shared vault lock it takes only while no operation is in
// progress or interrupted. Run as real processes: an interrupted operation is still recovered first
// (the recovery empties the lock file), leftovers in staging/ are still removed, and a change is still found.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, liveTree, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const owner = testKey('early-verify');

async function deployedVault(label: string): Promise<{ vault: string; pub: string }> {
  const dir = tempDir(`early-${label}`);
  const keys = writeKeyFiles(dir, 'release', owner);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', `early-${label}`]));
  writeTree(join(dir, 'src'), sampleTree('v1'));
  assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
  return { vault, pub: keys.pub };
}

describe('vault verify as a process, with its early tree reading', () => {
  it('an operation left interrupted (its pid in the lock file) is named and left for vault recover, as without the early reading', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { vault, pub } = await deployedVault('crash');
    writeFileSync(join(vault, 'staging', '.lock'), '999999\n');
    const r = await sentinel(['vault', 'verify', vault, '--trust', pub, '--live-only']);
    assertFails(r, 'tampered');
    assert.match(r.stdout, /tampered: .*interrupted.*sentinel vault recover/);
    assert.equal(readFileSync(join(vault, 'staging', '.lock'), 'utf8'), '999999\n', 'the marker is kept for a write operation');
    assertOk(await sentinel(['vault', 'recover', vault]));
    assertOk(await sentinel(['vault', 'verify', vault, '--trust', pub, '--live-only']));
    assert.equal(readFileSync(join(vault, 'staging', '.lock'), 'utf8'), '', 'the recovery finished and emptied the lock file');
  });

  it('leftovers in staging/ are removed before verify reads, as without the early reading', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { vault, pub } = await deployedVault('leftovers');
    mkdirSync(join(vault, 'staging', 'r00000009-0123456789ab'));
    assertOk(await sentinel(['vault', 'verify', vault, '--trust', pub, '--live-only']));
    assert.equal(existsSync(join(vault, 'staging', 'r00000009-0123456789ab')), false);
  });

  it('a changed live file is found, with and without --live-only', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { vault, pub } = await deployedVault('tamper');
    const file = join(liveTree(vault), 'VERSION');
    run('chattr', ['-i', file]);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/./, 'X'));
    run('chattr', ['+i', file]);
    for (const scope of [['--live-only'], []]) {
      const r = await sentinel(['vault', 'verify', vault, '--trust', pub, ...scope]);
      assertFails(r, 'hash-mismatch');
      assert.match(r.stdout, /hash-mismatch: .*VERSION/);
    }
  });
});
