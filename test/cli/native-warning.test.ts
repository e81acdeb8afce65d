// A package whose main native addon cannot be loaded (a copy of the package as it ships, its addon file
// corrupt) still verifies and deploys, more slowly and with the walk that opens files by path: `vault
// verify` and `deploy --vault` say so once on stderr, one line, and their exit codes and --json output
// are those of the package with the addon.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { CLI, assertOk, closeInProcessCli, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());
after(() => closeInProcessCli());

const WARNING = /^sentinel: warning: the native addon is not loaded \(cannot load .*sentinel_native\.node: .*\); (vault verify runs without it: slower, and it reads the tree by path, not through directory descriptors|deploy runs without it: slower, and a pruned release is unsealed and deleted by path) \(sentinel doctor\)$/;

test('without a loadable addon, vault verify and deploy --vault warn once on stderr; exit codes and --json output unchanged', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const dir = tempDir('native-warning');
  const keys = writeKeyFiles(dir, 'release', testKey('native-warning'));
  const vault = join(dir, 'vault');
  writeTree(join(dir, 'src'), sampleTree('nw'));
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'native-warning']));
  for (const v of [1, 2, 3]) assertOk(await sentinel(['sign', join(dir, 'src'), '--key', keys.key, '--vault', vault, '--version', String(v), '--out', join(dir, `v${v}.bundle`)]));
  assertOk(await sentinel(['deploy', join(dir, 'v1.bundle'), '--vault', vault]));

  // The package as it ships, its addon replaced by bytes no loader takes.
  const pkg = tempDir('native-warning-pkg');
  cpSync(join(packageRoot(), 'package.json'), join(pkg, 'package.json'));
  cpSync(join(packageRoot(), 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
  symlinkSync(join(packageRoot(), 'node_modules'), join(pkg, 'node_modules'));
  mkdirSync(join(pkg, 'native', 'build', 'Release'), { recursive: true });
  writeFileSync(join(pkg, 'native', 'build', 'Release', 'sentinel_native.node'), randomBytes(8192));
  const env = { ...process.env, SENTINEL_NO_NATIVE: '' };
  const without = (args: string[]) => spawnSync(process.execPath, [join(pkg, 'dist', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', env });
  const withAddon = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
  const errLines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
  const keysOf = (json: string): string[] => Object.keys(JSON.parse(json) as object).sort();

  for (const args of [['vault', 'verify', vault], ['vault', 'verify', vault, '--json'], ['vault', 'verify', vault, '--live-only', '--trust', keys.pub]]) {
    const a = without(args);
    const b = withAddon(args);
    assert.equal(a.status, b.status, `${args.join(' ')}: the same exit code\n${a.stderr}`);
    assert.equal(a.status, 0, a.stderr);
    assert.deepEqual(errLines(a.stderr).length, 1, `${args.join(' ')}: one line on stderr\n${a.stderr}`);
    assert.match(errLines(a.stderr)[0]!, WARNING);
    assert.deepEqual(errLines(b.stderr), [], 'nothing on stderr with the addon');
    if (args.includes('--json')) assert.deepEqual(keysOf(a.stdout), keysOf(b.stdout), 'the same JSON fields');
  }
  // deploy, then a deploy --json through the copy; then one through the real package for the shape
  const d2 = without(['deploy', join(dir, 'v2.bundle'), '--vault', vault, '--json']);
  assert.equal(d2.status, 0, d2.stderr);
  assert.equal(errLines(d2.stderr).length, 1, d2.stderr);
  assert.match(errLines(d2.stderr)[0]!, WARNING);
  const d3 = withAddon(['deploy', join(dir, 'v3.bundle'), '--vault', vault, '--json']);
  assert.equal(d3.status, 0, d3.stderr);
  assert.deepEqual(keysOf(d2.stdout), keysOf(d3.stdout));
  // a refusal keeps its exit code and its one error line, after the warning
  const again = without(['deploy', join(dir, 'v2.bundle'), '--vault', vault]);
  const againReal = withAddon(['deploy', join(dir, 'v2.bundle'), '--vault', vault]);
  assert.equal(again.status, againReal.status);
  assert.notEqual(again.status, 0);
  assert.deepEqual(errLines(again.stderr).slice(1), errLines(againReal.stderr), 'the same error line');
  assert.match(errLines(again.stderr)[0]!, WARNING);
});
