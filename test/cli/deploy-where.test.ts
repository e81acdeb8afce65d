// `sentinel deploy BUNDLE`: a bundle refused for what is inside it names the bundle file in its one
// error line, with the place inside the bundle after it (`(/path/x.bundle: signatures)`), not only a
// place like `signatures` or `bundle head` that names no file; a problem of the vault or the socket still names its path.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, corruptCopy, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, closeInProcessCli, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());
after(() => closeInProcessCli());

describe('cli: deploy names the bundle file in a refusal of its content', () => {
  it('untrusted signer, not a bundle, a damaged payload, a replayed version, a vault that is not one', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('cli-deploy-where');
    const keys = writeKeyFiles(dir, 'release', testKey('cli-deploy-where'));
    const other = writeKeyFiles(dir, 'other', testKey('cli-deploy-where-other'));
    const vault = join(dir, 'vault');
    writeTree(join(dir, 'src'), sampleTree('where'));
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'where']));
    const sign = async (key: string, version: number, out: string): Promise<void> => assertOk(await sentinel(['sign', join(dir, 'src'), '--key', key, '--vault-id', 'where', '--version', String(version), '--out', out]));
    const deployFails = async (bundle: string, code: Parameters<typeof assertFails>[1], where: RegExp, target = vault): Promise<void> => {
      const r = await sentinel(['deploy', bundle, '--vault', target]);
      assertFails(r, code);
      assert.match(r.errLines[0] ?? '', new RegExp(`\\(${where.source}\\)$`), r.errLines[0]);
      const j = await sentinel(['deploy', bundle, '--vault', target, '--json']);
      assert.match((JSON.parse(j.stdout) as { error: { where: string } }).error.where, new RegExp(`^${where.source}$`));
    };
    const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

    const untrusted = join(dir, 'untrusted.bundle');
    await sign(other.key, 1, untrusted);
    await deployFails(untrusted, 'untrusted-key', new RegExp(`${esc(untrusted)}: signatures`));

    const garbage = join(dir, 'garbage.bundle');
    writeFileSync(garbage, 'not a bundle at all, but long enough to hold a head\n'.repeat(4));
    await deployFails(garbage, 'malformed-bundle', new RegExp(`${esc(garbage)}: bundle head`));

    const good = join(dir, 'v1.bundle');
    await sign(keys.key, 1, good);
    const damaged = join(dir, 'damaged.bundle');
    corruptCopy(good, damaged, readFileSync(good).length - 3);
    await deployFails(damaged, 'hash-mismatch', new RegExp(`${esc(damaged)}: [^)/][^)]*`));

    assertOk(await sentinel(['deploy', good, '--vault', vault]));
    await deployFails(good, 'rollback', new RegExp(`${esc(good)}: r00000001-[0-9a-f]{12}`));
    await deployFails(good, 'not-found', new RegExp(esc(join(dir, 'src'))), join(dir, 'src'));
    const noDaemon = await sentinel(['deploy', 'garbage.bundle', '--socket', 'no-daemon.sock'], { cwd: dir });
    assertFails(noDaemon, 'unavailable');
    assert.match(noDaemon.errLines[0] ?? '', / \(no-daemon\.sock\)$/, 'the socket as given, not as a place in the bundle');
  });
});
