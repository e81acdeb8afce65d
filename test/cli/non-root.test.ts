// A vault command run by a user other than root (docs: README "Exit codes"): the vault's staging/
// and its lock are root's own, so the command cannot open the lock. The one line it prints says
// so and says that the command runs as root, through both entries (the executable's plain runners
// and main.js's command tree), in text and in --json, with exit 2 (not-permitted).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { BIN, CLI, assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());

const NOBODY = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'];

describe('vault commands as a user other than root', () => {
  it('say that the vault lock cannot be opened and that the command runs as root, exit 2, through both entries', async (t) => {
    if (needs(t, isRoot(), 'root (vault init, chattr +i, setpriv to another user)')) return;
    if (needs(t, spawnSync('setpriv', ['--version']).error === undefined, 'setpriv (util-linux)')) return;
    const base = tempDir('non-root');
    chmodSync(base, 0o755); // the other user may reach the vault, as under /var/lib
    const k = writeKeyFiles(base, 'k', testKey('non-root'));
    const vault = join(base, 'vault');
    const tree = join(base, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'a.txt'), 'a\n');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub]));
    assertOk(await sentinel(['sign-and-deploy', tree, '--key', k.key, '--vault', vault, '--version', '1']));
    chmodSync(k.pub, 0o644);
    const commands = [
      ['vault', 'status', vault],
      ['vault', 'verify', vault, '--trust', k.pub],
      ['vault', 'heal', vault],
    ];
    for (const entry of [BIN, CLI]) {
      for (const args of commands) {
        const what = `${entry === BIN ? 'sentinel.cjs' : 'main.js'} ${args.slice(0, 2).join(' ')}`;
        const r = await sentinel(args, { entry, prefix: NOBODY });
        assertFails(r, 'not-permitted');
        assert.equal(r.code, 2, what);
        assert.equal(r.errLines.length, 1, `${what}: one line: ${r.stderr}`);
        const line = r.errLines[0]!;
        assert.match(line, /cannot open the vault lock \(EACCES\)/, `${what}: ${line}`);
        assert.match(line, /run this command as root/, `${what}: says the command runs as root: ${line}`);
        assert.ok(line.endsWith(`(${join(vault, 'staging', '.lock')})`), `${what}: names the lock: ${line}`);
      }
      const j = await sentinel(['vault', 'status', vault, '--json'], { entry, prefix: NOBODY });
      const out = JSON.parse(j.stdout) as { ok: boolean; error: { code: string; message: string; exitCode: number } };
      assert.equal(out.ok, false);
      assert.equal(out.error.code, 'not-permitted');
      assert.equal(out.error.exitCode, 2);
      assert.match(out.error.message, /run this command as root/);
    }
  });
});
