// `vault verify` of a vault no release was ever deployed to says so (nothing to verify: exit 2, as
// "could not check"), and never "tampered"; `current` gone from a vault that has deployed before is
// still a tamper (exit 1). Through both entries: the package's bin and main.js.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, CLI, sentinel } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => cleanupAll());

async function freshVault(label: string): Promise<{ vault: string; pub: string; key: string; dir: string }> {
  const dir = tempDir(label);
  const r = await sentinel(['keygen', '--out', join(dir, 'release')]);
  assert.equal(r.code, 0, r.stderr);
  const vault = join(dir, 'vault');
  const init = await sentinel(['vault', 'init', vault, '--trust', join(dir, 'release.pub')]);
  assert.equal(init.code, 0, init.stderr);
  return { vault, pub: join(dir, 'release.pub'), key: join(dir, 'release.key'), dir };
}

describe('cli: vault verify of a vault with no release', () => {
  it('fresh from vault init: "no release deployed yet", exit 2, one line, never tampered; --json says the same', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const { vault, pub } = await freshVault('verify-empty');
    for (const entry of [BIN, CLI]) {
      const r = await sentinel(['vault', 'verify', vault, '--trust', pub], { entry, env: { NO_COLOR: '1' } });
      assert.equal(r.code, 2, `${entry}: ${r.stdout}${r.stderr}`);
      assert.deepEqual(r.errLines, [`sentinel: not-found: no release deployed yet: nothing to verify (${join(vault, 'current')})`], entry);
      assert.doesNotMatch(r.stdout + r.stderr, /tamper|NOT intact|violat/i, `${entry}: ${r.stdout}`);
      assert.match(r.stdout, /no release deployed yet/, r.stdout);
      const j = await sentinel(['vault', 'verify', vault, '--trust', pub, '--json'], { entry });
      assert.equal(j.code, 2, j.stderr);
      const report = JSON.parse(j.stdout) as { ok: boolean; problems: { code: string; path: string; message: string }[]; error: { code: string; exitCode: number } };
      assert.equal(report.ok, false);
      assert.deepEqual(report.problems.map((p) => [p.code, p.path, p.message]), [['not-found', 'current', 'no release deployed yet: nothing to verify']]);
      assert.equal(report.error.code, 'not-found');
      assert.equal(report.error.exitCode, 2);
    }
  });

  it('current removed from a vault that had a release: tampered, exit 1, naming what it had', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const { vault, pub, key, dir } = await freshVault('verify-nocurrent');
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'phi.py'), 'phi = 1\n');
    const d = await sentinel(['sign-and-deploy', tree, '--key', key, '--vault', vault]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(spawnSync('chattr', ['-i', vault]).status, 0);
    unlinkSync(join(vault, 'current'));
    assert.equal(spawnSync('chattr', ['+i', vault]).status, 0);
    const r = await sentinel(['vault', 'verify', vault, '--trust', pub, '--json']);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { problems: { code: string; path: string; message: string }[] };
    const current = report.problems.find((p) => p.path === 'current');
    assert.equal(current?.code, 'tampered', JSON.stringify(report.problems));
    assert.match(current?.message ?? '', /^no release is live \(`current` is missing\), though the vault has had one: highest version 1, 1 kept release\(s\)/, current?.message);
  });
});
