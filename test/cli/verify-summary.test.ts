// `sentinel vault verify`'s human summary says only what was checked: when the live release's
// signatures do not verify (here a --trust that is not the signer's), its tree is not read, and the
// summary must say so instead of "N files hashed; +i checked on every file and directory".
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());

describe('cli: vault verify summary', () => {
  it('claims the tree and +i checked only when the live release verified', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('cli-verify-summary');
    const keys = writeKeyFiles(dir, 'release', testKey('cli-verify-summary'));
    const other = writeKeyFiles(dir, 'other', testKey('cli-verify-summary-other'));
    const vault = join(dir, 'vault');
    writeTree(join(dir, 'src'), sampleTree('summary'));
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub]));
    assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
    const ok = await sentinel(['vault', 'verify', vault, '--trust', keys.pub]);
    assertOk(ok);
    assert.match(ok.stdout, /^ {2}\d+ files, \d+ bytes hashed; \+i checked on every file and directory$/m, ok.stdout);
    const wrong = await sentinel(['vault', 'verify', vault, '--trust', other.pub]);
    assertFails(wrong, 'untrusted-key');
    assert.doesNotMatch(wrong.stdout, /\+i checked on every file/, wrong.stdout);
    assert.match(wrong.stdout, /^ {2}live tree not checked: its release did not verify \(below\)$/m, wrong.stdout);
  });
});
