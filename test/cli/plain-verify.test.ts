// `vault verify VAULT [--trust KEY...] [--live-only] [--json]` runs without the command tree
// (src/cli/plain-verify.ts): the same answer, output and exit code as through the tree, for an
// intact vault, a changed one, a missing one and a missing key; any other form goes through the tree.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { plainVerifyArgs } from '../../src/cli/plain-verify.js';
import { testKey } from '../helpers/core-factory.js';
import { assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, liveTree, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

describe('cli: the plain forms of vault verify', () => {
  it('takes the vault first, then each option at most once, --trust with one or more key files', () => {
    assert.deepEqual(plainVerifyArgs(['V']), { path: 'V', opts: {} });
    assert.deepEqual(plainVerifyArgs(['V', '--trust', 'a.pub', '--live-only']), { path: 'V', opts: { trust: ['a.pub'], liveOnly: true } });
    assert.deepEqual(plainVerifyArgs(['V', '--json', '--trust', 'a.pub', 'b.pub']), { path: 'V', opts: { json: true, trust: ['a.pub', 'b.pub'] } });
    assert.deepEqual(plainVerifyArgs(['V', '--trust', 'a.pub', 'b.pub', '--json', '--live-only']), { path: 'V', opts: { trust: ['a.pub', 'b.pub'], json: true, liveOnly: true } });
  });

  it('leaves every other form to the command tree', () => {
    for (const words of [
      [],
      ['--live-only', 'V'],
      ['--', 'V'],
      ['-h'],
      ['V', '--help'],
      ['V', '-h'],
      ['V', '--'],
      ['V', '--trust'],
      ['V', '--trust', '--json'],
      ['V', '--trust', '-k.pub'],
      ['V', '--trust=a.pub'],
      ['V', '--trust', 'a.pub', '--trust', 'b.pub'],
      ['V', '--json', '--json'],
      ['V', '--live-only', '--live-only'],
      ['V', '--threshold', '1'],
      ['V', 'W'],
      ['V', '--live-only', 'W'],
      ['V', '--unknown'],
      ['', '--live-only'],
      ['-V'],
    ]) {
      assert.equal(plainVerifyArgs(words), null, words.join(' '));
    }
  });

  describe('as processes', () => {
    let dir = '';
    let vault = '';
    let pub = '';
    let tree: string[] = [];
    const hook = join(packageRoot(), 'dist', 'test', 'fixtures', 'module-log.js');
    before(async () => {
      dir = tempDir('plain-verify');
      if (!isRoot()) return;
      const keys = writeKeyFiles(dir, 'release', testKey('plain-verify'));
      pub = keys.pub;
      vault = join(dir, 'vault');
      assertOk(await sentinel(['vault', 'init', vault, '--trust', pub, '--vault-id', 'plain-verify']));
      writeTree(join(dir, 'src'), sampleTree('v1'));
      assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
      const cli = join(packageRoot(), 'dist', 'src', 'cli');
      tree = readdirSync(cli).filter((n) => /^sentinel-[A-Z0-9]+\.js$/.test(n) && readFileSync(join(cli, n), 'utf8').includes('// node_modules/commander/'));
    });

    /** Whether the process loaded the bundle file that holds commander. */
    async function loadsTree(args: string[]): Promise<boolean> {
      const log = join(dir, 'modules.txt');
      rmSync(log, { force: true });
      await sentinel(args, { env: { NODE_OPTIONS: `--import=${hook}`, SENTINEL_MODULE_LOG: log } });
      const modules = readFileSync(log, 'utf8').split('\n');
      return modules.some((m) => tree.some((n) => m.endsWith(`/${n}`)));
    }

    async function assertSameAnswers(label: string): Promise<void> {
      const missing = join(dir, 'no-such-vault');
      const noKey = join(dir, 'no-such.pub');
      for (const [direct, through] of [
        [['vault', 'verify', vault], ['vault', 'verify', '--', vault]],
        [['vault', 'verify', vault, '--trust', pub, '--live-only'], ['vault', 'verify', '--live-only', vault, '--trust', pub]],
        [['vault', 'verify', vault, '--json', '--trust', pub, pub], ['vault', 'verify', '--json', '--trust', pub, pub, '--', vault]],
        [['vault', 'verify', vault, '--trust', noKey], ['vault', 'verify', '--trust', noKey, '--', vault]],
        [['vault', 'verify', missing, '--trust', pub, '--json'], ['vault', 'verify', '--json', missing, '--trust', pub]],
      ]) {
        const fast = await sentinel(direct!);
        const slow = await sentinel(through!);
        assert.deepEqual({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, { code: slow.code, stdout: slow.stdout, stderr: slow.stderr }, `${label}: ${direct!.join(' ')}`);
      }
    }

    it('answer exactly as through the command tree, which they do not load', async (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      assert.ok(tree.length > 0, 'no bundle file holds commander');
      assert.equal(await loadsTree(['vault', 'verify', vault, '--trust', pub, '--live-only']), false);
      assert.equal(await loadsTree(['vault', 'verify', '--live-only', vault, '--trust', pub]), true);
      await assertSameAnswers('intact');
      // A changed live file: exit 1 and the same report both ways.
      const file = join(liveTree(vault), 'VERSION');
      run('chattr', ['-i', file]);
      writeFileSync(file, readFileSync(file, 'utf8').replace(/./, 'X'));
      run('chattr', ['+i', file]);
      const r = await sentinel(['vault', 'verify', vault, '--trust', pub, '--live-only']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /hash-mismatch: .*VERSION/);
      await assertSameAnswers('changed');
    });
  });
});
