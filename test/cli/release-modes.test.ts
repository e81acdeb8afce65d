// The modes of a release's own paths, which the manifest does not record (it lists the tree's entries,
// not the tree root): the deploy sets the release directory and its tree/ to 0755 and manifest.json and
// signatures.json to 0444 (docs/VAULT.md#modes). A root attacker who lifts +i and changes one (0777 on
// the release directory, so anyone may add to it once +i is lifted again) is named by `vault verify`,
// `tampered` at that path with the mode, in both scopes for the live release (both entries) and by the
// default scope for a kept one.
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { assertOk, BIN, CLI, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const owner = testKey('release-modes');

interface Problem {
  code: string;
  path: string;
  message: string;
}

/** A vault with versions 1 and 2 deployed (v2 live, v1 kept). */
async function twoReleases(): Promise<{ vault: string; pub: string; live: string; kept: string }> {
  const dir = tempDir('release-modes');
  const keys = writeKeyFiles(dir, 'release', owner);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'release-modes']));
  for (const v of [1, 2]) {
    writeTree(join(dir, `src-${v}`), sampleTree(`v${v}`));
    assertOk(await sentinel(['sign-and-deploy', join(dir, `src-${v}`), '--key', keys.key, '--vault', vault, '--version', String(v)]));
  }
  const live = basename(readlinkSync(join(vault, 'current')));
  const kept = readdirSync(join(vault, 'releases')).find((d) => d !== live)!;
  return { vault, pub: keys.pub, live, kept };
}

/** Changes a path's mode as a root attacker would: +i lifted from it, chmod, +i set again. */
function chmodSealed(path: string, mode: number): void {
  run('chattr', ['-i', path]);
  chmodSync(path, mode);
  run('chattr', ['+i', path]);
}

async function problemsOf(vault: string, pub: string, scope: string[], entry: string): Promise<Problem[]> {
  const r = await sentinel(['vault', 'verify', vault, '--trust', pub, '--json', ...scope], { entry });
  const report = JSON.parse(r.stdout) as { ok: boolean; problems: Problem[] };
  assert.equal(r.code, report.ok ? 0 : 1, `${r.stdout}\n${r.stderr}`);
  return report.problems;
}

describe('vault verify: the modes of a release directory, its tree root, manifest and signatures', () => {
  it('a changed mode is tampered at that path with the mode, in both scopes for the live release and in the default one for a kept release; restored, intact', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { vault, pub, live, kept } = await twoReleases();
    const cases: [string, number, number][] = [
      [`releases/${live}`, 0o777, 0o755],
      [`releases/${live}/tree`, 0o700, 0o755],
      [`releases/${live}/manifest.json`, 0o644, 0o444],
      [`releases/${live}/signatures.json`, 0o666, 0o444],
    ];
    for (const [rel, mode, was] of cases) {
      chmodSealed(join(vault, rel), mode);
      for (const entry of [BIN, CLI]) {
        for (const scope of [[], ['--live-only']]) {
          const problems = await problemsOf(vault, pub, scope, entry);
          const named = problems.filter((p) => p.path === rel);
          assert.equal(named.length, 1, `${rel} at ${mode.toString(8)} is named once (${entry} ${scope.join(' ')}): ${JSON.stringify(problems)}`);
          assert.equal(named[0]!.code, 'tampered');
          assert.match(named[0]!.message, new RegExp(`mode ${mode.toString(8)}\\b.*${was.toString(8)}`));
        }
      }
      chmodSealed(join(vault, rel), was);
    }
    chmodSealed(join(vault, 'releases', kept), 0o777);
    const all = await problemsOf(vault, pub, [], CLI);
    assert.ok(all.some((p) => p.path === `releases/${kept}` && p.code === 'tampered' && /mode 777/.test(p.message)), `the kept release is named: ${JSON.stringify(all)}`);
    assert.deepEqual(await problemsOf(vault, pub, ['--live-only'], CLI), [], 'the live-only scope does not read the kept release');
    chmodSealed(join(vault, 'releases', kept), 0o755);
    assert.deepEqual(await problemsOf(vault, pub, [], BIN), [], 'restored: intact');
  });
});
