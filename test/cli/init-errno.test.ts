// `sentinel vault init` where the vault directory cannot be made (a read-only filesystem) says why in
// its one line, as keygen and sign do (`(EROFS)`), and leaves no parent it made behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, closeInProcessCli, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());
after(() => closeInProcessCli());

describe('cli: vault init names the errno when the vault directory cannot be made', () => {
  it('a read-only filesystem: not-permitted (EROFS), exit 2, nothing left', async (t) => {
    if (needs(t, isRoot(), 'root (mounts a read-only tmpfs)')) return;
    const dir = tempDir('cli-init-errno');
    const keys = writeKeyFiles(dir, 'release', testKey('cli-init-errno'));
    const mnt = join(dir, 'ro');
    assert.equal(spawnSync('mkdir', [mnt]).status, 0);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', mnt], { encoding: 'utf8' });
    assert.equal(m.status, 0, `mount: ${m.stderr}`);
    try {
      const r = await sentinel(['vault', 'init', join(mnt, 'vault'), '--trust', keys.pub]);
      assertFails(r, 'not-permitted');
      assert.match(r.errLines[0] ?? '', /^sentinel: not-permitted: cannot create the vault directory \(EROFS\) \(.+\/ro\/vault\)$/, r.errLines[0]);
      assert.deepEqual(readdirSync(mnt), []);
    } finally {
      assert.equal(spawnSync('umount', [mnt]).status, 0);
    }
  });
});
