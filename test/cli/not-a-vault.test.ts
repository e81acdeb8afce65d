// A path that is not a vault, through both entries (the bin's plain forms and main.js's command tree):
// `vault status` and `vault verify` of a regular file (a typo), a missing path and a directory with no
// vault.json each print one line saying it is not a vault, code not-found, exit 2; none of them is
// reported as an insecure path or an integrity violation.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';
import { assertFails, BIN, CLI, sentinel } from '../helpers/cli-harness.js';

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
