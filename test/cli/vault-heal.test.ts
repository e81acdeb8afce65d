// `sentinel vault heal`: an operator who found a tampered live tree with `vault verify` repairs it
// from the stored signed bundle without the daemon, through the real compiled CLI as root on a real
// vault: healed and intact again, a damaged stored bundle refused with nothing changed, an empty
// vault and a wrong --trust refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, corruptCopy, liveTree, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, BIN, CLI, closeInProcessCli, sentinel, sentinelInProcess, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());
after(() => closeInProcessCli());

// A vault with version 1 of the sample tree deployed, and its key files.
async function deployedVault(label: string): Promise<{ dir: string; vault: string; keys: { key: string; pub: string } }> {
  const dir = tempDir(label);
  const keys = writeKeyFiles(dir, 'release', testKey(label));
  const vault = join(dir, 'vault');
  writeTree(join(dir, 'src'), sampleTree(label));
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', label]));
  assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
  return { dir, vault, keys };
}

// What an intruder does: lift +i from a live file and change it (left without +i).
function tamper(vault: string): void {
  const file = join(liveTree(vault), 'config', 'phi.json');
  assert.equal(spawnSync('chattr', ['-i', file]).status, 0, `chattr -i ${file}`);
  writeFileSync(file, '{"tag":"tampered"}\n');
}

describe('cli: vault heal', () => {
  it('is listed under `sentinel vault` with its help and examples', async () => {
    const r = await sentinelInProcess(['vault', 'heal', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: sentinel vault heal \[options\] <vault>/);
    assert.match(r.stdout, /--trust <pub\.\.\.>/);
    assert.match(r.stdout, /Examples:\n {2}\$ sentinel vault heal /);
    assert.match((await sentinelInProcess(['vault', '--help'])).stdout, /^ {2}heal \[options\] <vault> /m);
  });

  it('a tampered live tree is re-staged from its stored signed bundle: verify is intact again', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { vault, keys } = await deployedVault('cli-heal');
    tamper(vault);
    assertFails(await sentinel(['vault', 'verify', vault]), ['hash-mismatch', 'unsealed', 'size-mismatch']);
    const r = await sentinel(['vault', 'heal', vault, '--trust', keys.pub]);
    assertOk(r);
    assert.match(r.stdout, /^healed version 1 \(release r00000001-[0-9a-f]{12}\) from its stored signed bundle; live tree sealed$/m, r.stdout);
    assertOk(await sentinel(['vault', 'verify', vault, '--trust', keys.pub]));
    assert.equal(readFileSync(join(liveTree(vault), 'config', 'phi.json'), 'utf8').includes('tampered'), false);
    const j = await sentinel(['vault', 'heal', vault, '--json']);
    assertOk(j);
    const out = JSON.parse(j.stdout) as { ok: boolean; version: number; releaseId: string };
    assert.deepEqual([out.ok, out.version], [true, 1]);
    assert.match(out.releaseId, /^r00000001-/);
  });

  it('a damaged stored bundle is refused (exit 1) and nothing in the vault changes', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { dir, vault } = await deployedVault('cli-heal-bad');
    tamper(vault);
    const bundles = join(vault, 'bundles');
    const name = readdirSync(bundles).find((n) => n.endsWith('.bundle'));
    assert.ok(name !== undefined);
    const stored = join(bundles, name);
    const copy = join(dir, 'damaged.bundle');
    corruptCopy(stored, copy, readFileSync(stored).length - 10);
    for (const p of [bundles, stored]) assert.equal(spawnSync('chattr', ['-i', p]).status, 0);
    writeFileSync(stored, readFileSync(copy));
    for (const p of [stored, bundles]) assert.equal(spawnSync('chattr', ['+i', p]).status, 0);
    const before = snapshot(vault);
    assertFails(await sentinel(['vault', 'heal', vault]), 'hash-mismatch');
    assert.deepEqual(snapshot(vault), before);
  });

  it('a stored bundle that is a directory is tampered (exit 1) naming it, by heal, verify and status through both entries; nothing changes', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { vault } = await deployedVault('cli-heal-dir');
    tamper(vault);
    const bundles = join(vault, 'bundles');
    const name = readdirSync(bundles).find((n) => n.endsWith('.bundle'));
    assert.ok(name !== undefined);
    const stored = join(bundles, name);
    for (const p of [bundles, stored]) assert.equal(spawnSync('chattr', ['-i', p]).status, 0);
    unlinkSync(stored);
    mkdirSync(stored, { mode: 0o755 });
    for (const p of [stored, bundles]) assert.equal(spawnSync('chattr', ['+i', p]).status, 0);
    const before = snapshot(vault);
    for (const entry of [BIN, CLI]) {
      const heal = await sentinel(['vault', 'heal', vault], { entry });
      assertFails(heal, 'tampered');
      assert.ok(heal.errLines[0]!.includes(`bundles/${name}`), `heal names the stored bundle (${entry}): ${heal.stderr}`);
      assert.match(heal.errLines[0]!, /directory/, `heal says what is there (${entry}): ${heal.stderr}`);
      const verify = await sentinel(['vault', 'verify', vault, '--json'], { entry });
      assert.equal(verify.code, 1, `verify exits 1 (${entry}): ${verify.stdout} ${verify.stderr}`);
      const report = JSON.parse(verify.stdout) as { ok: boolean; problems: { code: string; path: string }[] };
      assert.ok(
        report.problems.some((p) => p.code === 'tampered' && p.path === `bundles/${name}`),
        `verify names the stored bundle tampered (${entry}): ${JSON.stringify(report.problems)}`,
      );
      assert.equal(report.problems.some((p) => p.code === 'usage'), false, `no usage problem (${entry}): ${JSON.stringify(report.problems)}`);
      const status = await sentinel(['vault', 'status', vault, '--json'], { entry });
      assert.equal(status.code, 1, `status exits 1 (${entry}): ${status.stdout} ${status.stderr}`);
      const st = JSON.parse(status.stdout) as { ok: boolean; unsealedPaths: string[] };
      assert.equal(st.ok, false);
      assert.ok(st.unsealedPaths.includes(stored), `status names the stored bundle (${entry}): ${st.unsealedPaths.join(', ')}`);
    }
    assert.deepEqual(snapshot(vault), before);
  });

  it('an empty vault has nothing to heal (exit 2); a --trust that the vault does not trust is refused (exit 1)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('cli-heal-empty');
    const keys = writeKeyFiles(dir, 'release', testKey('cli-heal-empty'));
    const other = writeKeyFiles(dir, 'other', testKey('cli-heal-other'));
    const vault = join(dir, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub]));
    assertFails(await sentinel(['vault', 'heal', vault]), 'not-found');
    const { vault: deployed } = await deployedVault('cli-heal-trust');
    tamper(deployed);
    const before = snapshot(deployed);
    assertFails(await sentinel(['vault', 'heal', deployed, '--trust', other.pub]), 'tampered');
    assert.deepEqual(snapshot(deployed), before);
  });
});
