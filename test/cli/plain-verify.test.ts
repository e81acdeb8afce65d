// `vault verify VAULT [--trust KEY...] [--live-only] [--json]` runs without the command tree
// (src/cli/plain-verify.ts), from the plain runners' CommonJS bundle (src/cli/plain-runners.ts): the
// same answer, output and exit code as through the tree, for an intact vault, a changed one, a
// missing one and a missing key; any other form goes through the tree and the ES module chunks.
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
    let vaultCode: string[] = [];
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
      const chunks = readdirSync(cli).filter((n) => /^sentinel-[A-Z0-9]+\.js$/.test(n));
      const holding = (marker: string): string[] => chunks.filter((n) => readFileSync(join(cli, n), 'utf8').includes(marker));
      tree = holding('// node_modules/commander/');
      vaultCode = holding('// src/vault/verify.ts');
    });

    /** Whether the process loaded the ES chunk that holds commander, and the one that holds the vault's verify. */
    async function loadsChunks(args: string[]): Promise<{ tree: boolean; vaultCode: boolean }> {
      const log = join(dir, 'modules.txt');
      rmSync(log, { force: true });
      await sentinel(args, { env: { NODE_OPTIONS: `--import=${hook}`, SENTINEL_MODULE_LOG: log } });
      const modules = readFileSync(log, 'utf8').split('\n');
      const loads = (names: string[]): boolean => modules.some((m) => names.some((n) => m.endsWith(`/${n}`)));
      return { tree: loads(tree), vaultCode: loads(vaultCode) };
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
      assert.ok(vaultCode.length > 0, 'no bundle file holds the vault\'s verify');
      // The plain form runs from plain.cjs: neither the tree's nor the vault code's ES chunks.
      assert.deepEqual(await loadsChunks(['vault', 'verify', vault, '--trust', pub, '--live-only']), { tree: false, vaultCode: false });
      assert.deepEqual(await loadsChunks(['vault', 'verify', '--live-only', vault, '--trust', pub]), { tree: true, vaultCode: true });
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
