// `deploy BUNDLE` with its options after it runs without the command tree (src/cli/plain-deploy.ts),
// from the plain runners' CommonJS bundle (src/cli/plain-runners.ts): through the executable and
// through main.js it gives the same output, exit code and changes to the vault as the same words
// through the command tree, for a deploy and for every refusal (bad signature, untrusted key,
// rollback, a locked vault, a malformed bundle, a missing file, bad arguments); any other form goes
// through the tree.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { plainDeployArgs } from '../../src/cli/plain-deploy.js';
import { testKey } from '../helpers/core-factory.js';
import { BIN, CLI, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import type { CliResult } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

describe('cli: the plain forms of deploy', () => {
  it('take the bundle first, then each option at most once, --trust with one or more key files', () => {
    assert.deepEqual(plainDeployArgs(['B']), { bundle: 'B', opts: {} });
    assert.deepEqual(plainDeployArgs(['B', '--vault', 'V']), { bundle: 'B', opts: { vault: 'V' } });
    assert.deepEqual(plainDeployArgs(['B', '--json', '--vault', 'V']), { bundle: 'B', opts: { json: true, vault: 'V' } });
    assert.deepEqual(plainDeployArgs(['B', '--socket', 'S', '--json']), { bundle: 'B', opts: { socket: 'S', json: true } });
    assert.deepEqual(plainDeployArgs(['B', '--vault', 'V', '--trust', 'a.pub', 'b.pub', '--threshold', '2']), { bundle: 'B', opts: { vault: 'V', trust: ['a.pub', 'b.pub'], threshold: 2 } });
    assert.deepEqual(plainDeployArgs(['B', '--threshold', '007', '--vault', 'V', '--socket', 'S']), { bundle: 'B', opts: { threshold: 7, vault: 'V', socket: 'S' } });
  });

  it('leave every other form to the command tree', () => {
    for (const words of [
      [],
      ['--vault', 'V', 'B'],
      ['--', 'B'],
      ['-h'],
      ['B', '--help'],
      ['B', '-h'],
      ['B', '--'],
      ['B', 'C'],
      ['B', '--vault', 'V', 'C'],
      ['B', '--vault'],
      ['B', '--vault', '--json'],
      ['B', '--vault', '-V'],
      ['B', '--vault', ''],
      ['B', '--vault=V'],
      ['B', '--vault', 'V', '--vault', 'W'],
      ['B', '--socket', 'S', '--socket', 'T'],
      ['B', '--json', '--json'],
      ['B', '--trust'],
      ['B', '--trust', '-k.pub'],
      ['B', '--trust', 'a.pub', '--trust', 'b.pub'],
      ['B', '--threshold', '0'],
      ['B', '--threshold', '-1'],
      ['B', '--threshold', '1.5'],
      ['B', '--threshold', '99999999999999999999'],
      ['B', '--threshold', '1', '--threshold', '2'],
      ['B', '--unknown'],
      ['', '--vault', 'V'],
      ['-B', '--vault', 'V'],
    ]) {
      assert.equal(plainDeployArgs(words), null, words.join(' '));
    }
  });

  describe('as processes', () => {
    let dir = '';
    let pub = '';
    let otherPub = '';
    const vaults: string[] = [];
    const bundles: Record<string, string> = {};
    let treeChunks: string[] = [];
    const hook = join(packageRoot(), 'dist', 'test', 'fixtures', 'module-log.js');

    before(async () => {
      dir = tempDir('plain-deploy');
      if (!isRoot()) return;
      const keys = writeKeyFiles(dir, 'release', testKey('plain-deploy'));
      const other = writeKeyFiles(dir, 'other', testKey('plain-deploy-other'));
      pub = keys.pub;
      otherPub = other.pub;
      const src = join(dir, 'src');
      writeTree(src, sampleTree('plain-deploy'));
      const sign = async (name: string, key: string, version: number): Promise<string> => {
        const out = join(dir, `${name}.bundle`);
        assertOk(await sentinel(['sign', src, '--key', key, '--vault-id', 'plain-deploy', '--version', String(version), '--out', out]));
        return out;
      };
      for (const v of [1, 2, 3, 4, 5]) bundles[`v${v}`] = await sign(`v${v}`, keys.key, v);
      bundles.untrusted = await sign('untrusted', other.key, 9);
      // A bundle whose signature does not check out: one character of its signature's base64 changed.
      const good = readFileSync(bundles.v4!, 'latin1');
      const at = /"sig(nature)?"\s*:\s*"/.exec(good);
      assert.ok(at !== null, 'no signature field found in the bundle head');
      const i = at.index + at[0].length + 5;
      bundles.badSignature = join(dir, 'bad-signature.bundle');
      writeFileSync(bundles.badSignature, Buffer.from(good.slice(0, i) + (good[i] === 'A' ? 'B' : 'A') + good.slice(i + 1), 'latin1'));
      bundles.malformed = join(dir, 'malformed.bundle');
      writeFileSync(bundles.malformed, 'not a bundle at all, but long enough to hold a head\n'.repeat(4));
      bundles.missing = join(dir, 'no-such.bundle');
      // One vault per way in, made alike: the same id, policy and first release.
      for (const name of ['plain-bin', 'plain-main', 'tree']) {
        const vault = join(dir, name);
        assertOk(await sentinel(['vault', 'init', vault, '--trust', pub, '--vault-id', 'plain-deploy']));
        assertOk(await sentinel(['deploy', '--vault', vault, '--', bundles.v1!]));
        vaults.push(vault);
      }
      const cli = join(packageRoot(), 'dist', 'src', 'cli');
      treeChunks = readdirSync(cli).filter((n) => /^sentinel-[A-Z0-9]+\.js$/.test(n) && readFileSync(join(cli, n), 'utf8').includes('// node_modules/commander/'));
    });

    /** The three ways in: the plain form through the executable and through main.js, and the same words through the tree. */
    const ways = (words: string[], vault?: string): { label: string; args: string[]; entry: string }[] => {
      const [bundle, ...rest] = words;
      const v = (r: string[]): string[] => (vault === undefined ? r : r.map((w) => (w === 'VAULT' ? vault : w)));
      return [
        { label: 'executable', args: ['deploy', bundle!, ...v(rest)], entry: BIN },
        { label: 'main.js', args: ['deploy', bundle!, ...v(rest)], entry: CLI },
        { label: 'tree', args: ['deploy', ...v(rest), '--', bundle!], entry: BIN },
      ];
    };

    const answer = (r: CliResult, vault: string): { code: number | null; stdout: string; stderr: string } => ({ code: r.code, stdout: r.stdout.split(vault).join('VAULT'), stderr: r.stderr.split(vault).join('VAULT') });

    /** The vault as bytes, modes and flags, without vault.json (which holds its creation time) and the lock file (which a lock holder writes). */
    const state = (vault: string): Map<string, string> => {
      const s = snapshot(vault);
      s.delete('./vault.json');
      s.delete('./staging/.lock');
      return s;
    };

    it('load no command tree, no main.js and no large package', async (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      assert.ok(treeChunks.length > 0, 'no bundle file holds commander');
      const log = join(dir, 'modules.txt');
      const loads = async (args: string[]): Promise<string[]> => {
        rmSync(log, { force: true });
        const r = await sentinel(args, { entry: BIN, env: { NODE_OPTIONS: `--import=${hook}`, SENTINEL_MODULE_LOG: log } });
        assert.ok(r.code === 0 || args.includes(bundles.missing!), r.stderr);
        return readFileSync(log, 'utf8').split('\n').filter((m) => m !== '');
      };
      // A whole deploy, into a vault of its own.
      const vault = join(dir, 'modules');
      assertOk(await sentinel(['vault', 'init', vault, '--trust', pub, '--vault-id', 'plain-deploy']));
      const plain = await loads(['deploy', bundles.v1!, '--vault', vault, '--json']);
      assert.ok(plain.length > 0, 'the module log recorded nothing');
      assert.deepEqual(plain.filter((m) => m.endsWith('/main.js') || /\/sentinel-[A-Z0-9]+\.js$/.test(m)), []);
      assert.deepEqual(plain.filter((m) => /\/node_modules\/(commander|execa|pino|zod|chokidar|prom-client)\//.test(m)), []);
      const tree = await loads(['deploy', '--vault', vault, '--', bundles.missing!]);
      assert.ok(tree.some((m) => treeChunks.some((n) => m.endsWith(`/${n}`))), 'the tree form did not load the command tree');
    });

    it('deploy exactly as through the command tree, with the same changes to the vault', async (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      for (const words of [
        [bundles.v2!, '--vault', 'VAULT'],
        [bundles.v3!, '--vault', 'VAULT', '--json', '--trust', pub],
        [bundles.v4!, '--json', '--trust', pub, '--threshold', '1', '--vault', 'VAULT'],
      ]) {
        const results = [];
        for (const [i, w] of ways(words).entries()) {
          const vault = vaults[i]!;
          const r = await sentinel(w.args.map((a) => (a === 'VAULT' ? vault : a)), { entry: w.entry });
          assert.equal(r.code, 0, `${w.label}: ${r.stderr}`);
          results.push({ label: w.label, answer: answer(r, vault), state: state(vault) });
        }
        for (const r of results.slice(1)) {
          assert.deepEqual(r.answer, results[0]!.answer, `${r.label} against ${results[0]!.label}: ${words.join(' ')}`);
          assert.deepEqual(r.state, results[0]!.state, `${r.label}'s vault against ${results[0]!.label}'s: ${words.join(' ')}`);
        }
      }
    });

    it('refuse exactly as through the command tree, leaving the vault as it was', async (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      const vault = vaults[0]!;
      const cases: [string, string[]][] = [
        ['bad signature', [bundles.badSignature!, '--vault', 'VAULT']],
        ['bad signature, json', [bundles.badSignature!, '--vault', 'VAULT', '--json']],
        ['untrusted key', [bundles.untrusted!, '--vault', 'VAULT']],
        ['untrusted key, anchors from outside', [bundles.untrusted!, '--vault', 'VAULT', '--trust', otherPub, '--json']],
        ['anchors the vault does not hold', [bundles.v5!, '--vault', 'VAULT', '--trust', pub, otherPub]],
        ['rollback', [bundles.v2!, '--vault', 'VAULT']],
        ['rollback, json', [bundles.v3!, '--json', '--vault', 'VAULT']],
        ['malformed bundle', [bundles.malformed!, '--vault', 'VAULT']],
        ['missing file', [bundles.missing!, '--vault', 'VAULT', '--json']],
        ['not a vault', [bundles.v4!, '--vault', join(dir, 'src')]],
        ['no target', [bundles.v4!]],
        ['both targets', [bundles.v4!, '--vault', 'VAULT', '--socket', join(dir, 'no.sock'), '--json']],
        ['--trust without --vault', [bundles.v4!, '--socket', join(dir, 'no.sock'), '--trust', pub]],
        ['--threshold without --trust', [bundles.v4!, '--vault', 'VAULT', '--threshold', '2']],
        ['a threshold above the keys', [bundles.v4!, '--vault', 'VAULT', '--trust', pub, '--threshold', '2', '--json']],
        ['a missing key file', [bundles.v4!, '--vault', 'VAULT', '--trust', join(dir, 'no-such.pub')]],
        ['no daemon', [bundles.v4!, '--socket', join(dir, 'no.sock')]],
        ['a threshold of 0 (the tree parses it)', [bundles.v4!, '--vault', 'VAULT', '--threshold', '0', '--json']],
        ['an unknown option (the tree parses it)', [bundles.v4!, '--vault', 'VAULT', '--bogus']],
        ['a repeated option (the tree parses it)', [bundles.v4!, '--vault', 'VAULT', '--vault', 'VAULT', '--json']],
      ];
      const before = state(vault);
      for (const [what, words] of cases) {
        const results = [];
        for (const w of ways(words, vault)) results.push({ label: w.label, r: await sentinel(w.args, { entry: w.entry }) });
        const first = results[0]!;
        assert.ok(first.r.code === 1 || first.r.code === 2, `${what}: exit ${String(first.r.code)}: ${first.r.stderr}`);
        assert.equal(first.r.stderr.split('\n').filter((l) => l !== '').length, 1, `${what}: one error line: ${first.r.stderr}`);
        for (const x of results.slice(1)) assert.deepEqual(answer(x.r, vault), answer(first.r, vault), `${what}: ${x.label} against ${first.label}`);
        assert.deepEqual(state(vault), before, `${what}: the vault changed`);
      }
    });

    it('wait for a locked vault and refuse it as busy exactly as through the command tree', async (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      const vault = vaults[0]!;
      const before = state(vault);
      const holder = await holdLock(join(vault, 'staging', '.lock'));
      try {
        // The three at once: each waits for the lock as long as the CLI does, then refuses.
        const results = await Promise.all(ways([bundles.v5!, '--vault', 'VAULT', '--json'], vault).map(async (w) => ({ label: w.label, r: await sentinel(w.args, { entry: w.entry, timeoutMs: 120_000 }) })));
        const first = results[0]!;
        assert.equal(first.r.code, 2, first.r.stderr);
        assert.match(first.r.stderr, /^sentinel: busy: /);
        for (const x of results.slice(1)) assert.deepEqual(answer(x.r, vault), answer(first.r, vault), `${x.label} against ${first.label}`);
      } finally {
        await holder.kill();
      }
      assert.deepEqual(state(vault), before);
      // Released: the same bundle now deploys, through the plain form.
      assertOk(await sentinel(['deploy', bundles.v5!, '--vault', vault], { entry: BIN }));
    });
  });
});

/** A child process that holds the vault lock through the compiled lock module until killed. */
function holdLock(path: string): Promise<{ kill(): Promise<void> }> {
  const mod = new URL('../../src/vault/lock.js', import.meta.url).href;
  const code = `const {acquireLock}=await import(${JSON.stringify(mod)});await acquireLock(${JSON.stringify(path)},{timeoutMs:5000});process.stdout.write('locked\\n');setInterval(()=>{},1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.on('exit', (c) => reject(new Error(`lock holder exited early (${String(c)})`)));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (!d.includes('locked')) return;
      child.removeAllListeners('exit');
      resolve({ kill: () => new Promise((r) => { child.on('exit', () => r()); child.kill('SIGKILL'); }) });
    });
  });
}
