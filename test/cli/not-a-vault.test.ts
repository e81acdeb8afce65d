// A path that is not a vault, through both entries (the bin's plain forms and main.js's command tree):
// `vault status` and `vault verify` of a regular file (a typo), a missing path and a directory with no
// vault.json each print one line saying it is not a vault, code not-found, exit 2; none of them is
// reported as an insecure path or an integrity violation. A vault that lost its vault.json (its
// releases/, state/ and the rest still there) is a tampered vault, not a missing one: exit 1.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanupAll, run, tempDir } from '../helpers/vault-factory.js';
import { testKey } from '../helpers/core-factory.js';
import { assertFails, assertOk, BIN, CLI, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';

after(() => cleanupAll());

test('vault status and vault verify of a file, a missing path or a directory without vault.json: one "not a vault" line, exit 2', async () => {
  const base = tempDir('not-a-vault');
  chmodSync(base, 0o755);
  const file = join(base, 'phi-engine.bundle');
  writeFileSync(file, 'not a vault\n', { mode: 0o644 });
  const empty = join(base, 'empty');
  mkdirSync(empty, { mode: 0o755 });
  for (const path of [file, join(base, 'missing'), empty]) {
    for (const entry of [BIN, CLI]) {
      for (const args of [['vault', 'status', path], ['vault', 'status', path, '--json'], ['vault', 'verify', path]]) {
        const r = await sentinel(args, { entry });
        const what = `${entry} ${args.join(' ')}`;
        assertFails(r, 'not-found');
        assert.match(r.errLines[0]!, /^sentinel: not-found: not a vault \(/, what);
        assert.ok(r.errLines[0]!.endsWith(`(${path})`), `${what}: names the path: ${r.errLines[0]!}`);
        assert.equal(r.code, 2, what);
        if (args.includes('--json')) assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'not-found', what);
      }
    }
  }
});

test('a vault whose vault.json was removed (releases/, state/ and the rest still there) is tampered, exit 1, for status and verify through both entries', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('vault-json-gone');
  chmodSync(base, 0o755);
  const keys = writeKeyFiles(base, 'release', testKey('vault-json-gone'));
  const vault = join(base, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub]));
  run('chattr', ['-i', vault, join(vault, 'vault.json')]);
  rmSync(join(vault, 'vault.json'));
  run('chattr', ['+i', vault]);
  for (const entry of [BIN, CLI]) {
    for (const args of [['vault', 'status', vault], ['vault', 'status', vault, '--json'], ['vault', 'verify', vault], ['vault', 'verify', vault, '--live-only', '--json']]) {
      const r = await sentinel(args, { entry });
      const what = `${entry} ${args.join(' ')}`;
      assertFails(r, 'tampered');
      assert.match(r.errLines[0]!, /^sentinel: tampered: vault\.json is missing/, what);
      assert.ok(r.errLines[0]!.endsWith(`(${join(vault, 'vault.json')})`), `${what}: names vault.json: ${r.errLines[0]!}`);
      if (args.includes('--json')) assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'tampered', what);
    }
  }
});
