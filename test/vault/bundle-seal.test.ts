// A stored bundle is kept sealed (+i) like the rest of the vault (docs/VAULT.md#layout): one whose +i
// was lifted is named by the default verify (unsealed at bundles/<id>.bundle) and by status (among
// unsealedPaths), the live release's and a kept one's alike; before, both said intact and sealed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, run } from '../helpers/vault-factory.js';

after(cleanupAll);

test('a stored bundle without +i: the default verify names it unsealed, status lists it', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const tv = await makeVault('bundle-seal');
  try {
    const b1 = await tv.bundle(1);
    await tv.vault.deploy(b1.path);
    const b2 = await tv.bundle(2);
    await tv.vault.deploy(b2.path);
    assert.equal((await tv.vault.verify()).ok, true);
    for (const id of [b2.releaseId, b1.releaseId]) {
      const file = join(tv.path, 'bundles', `${id}.bundle`);
      run('chattr', ['-i', file]);
      const report = await tv.vault.verify();
      assert.equal(report.ok, false, `verify with ${id}.bundle unsealed`);
      assert.deepEqual(report.problems.map((p) => `${p.code}@${p.path}`), [`unsealed@bundles/${id}.bundle`]);
      const st = await tv.vault.status();
      assert.deepEqual(st.unsealedPaths, [file]);
      assert.equal(st.sealed, false);
      run('chattr', ['+i', file]);
    }
    assert.equal((await tv.vault.verify()).ok, true);
    assert.equal((await tv.vault.status()).sealed, true);
  } finally {
    await closeDeps(tv.deps);
  }
});
