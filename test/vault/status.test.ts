// `status()` says what it checked (docs/VAULT.md#status): the live release's signatures, release id and
// vault binding, and nothing of the kept releases but their directory names. A kept release that
// verify would refuse is still listed (never left out) and marked unchecked; a live release whose
// signatures do not check out is shown with the reason, never with a signer.
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { describeStatus } from '../../src/cli/vault-commands.js';
import { sentinel } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, run } from '../helpers/vault-factory.js';

after(cleanupAll);

/** Replaces a sealed file's bytes and seals it again (as a root attacker could). */
function overwriteSealed(file: string, write: () => void): void {
  run('chattr', ['-i', file]);
  write();
  run('chattr', ['+i', file]);
}

describe('vault status: what it checks and what it only lists', { concurrency: false }, () => {
  test('every kept release is listed from its directory name; only the live one is checked', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('status-kept');
    try {
      const b = [await tv.bundle(1), await tv.bundle(2), await tv.bundle(3)];
      for (const x of b) await tv.vault.deploy(x.path);
      // The oldest kept release's manifest no longer parses: verify refuses it; status must not hide it.
      overwriteSealed(join(tv.path, 'releases', b[0]!.releaseId, 'manifest.json'), () => writeFileSync(join(tv.path, 'releases', b[0]!.releaseId, 'manifest.json'), '{"not":"a manifest"}'));
      const st = await tv.vault.status();
      assert.deepEqual(
        st.releases.map((r) => [r.version, r.releaseId, r.live, r.checked]),
        [
          [1, b[0]!.releaseId, false, false],
          [2, b[1]!.releaseId, false, false],
          [3, b[2]!.releaseId, true, true],
        ],
      );
      assert.equal(st.version, 3);
      assert.equal(st.releaseId, b[2]!.releaseId);
      assert.deepEqual(st.signers, [tv.keys[0]!.public.id]);
      assert.equal(st.liveProblem, null);
      assert.equal(st.highestVersion, 3);
      assert.equal(st.sealed, true);
      const text = describeStatus(st).join('\n');
      assert.match(text, /kept releases: v1, v2, v3 \(live\)/);
      assert.match(text, /not checked here: .*kept releases other than the live one.*sentinel vault verify/);
      assert.match(text, new RegExp(`live: version 3, release ${b[2]!.releaseId}$`, 'm'), 'the directory is named only when it differs from the release id');
      const json = await sentinel(['vault', 'status', tv.path, '--json']);
      assert.equal(json.code, 0, json.stdout + json.stderr);
      const parsed = JSON.parse(json.stdout) as { ok: boolean; notChecked: string[] };
      assert.equal(parsed.ok, true);
      assert.deepEqual(parsed.notChecked, ['the live tree', "the live manifest's entries", 'kept releases other than the live one', 'stored bundles']);
      const all = await tv.vault.verify();
      assert.equal(all.ok, false, 'verify refuses the damaged kept release that status lists unchecked');
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a live release whose signatures do not verify is shown with the reason and no signer', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('status-badsig');
    try {
      const b1 = await tv.bundle(1);
      const b2 = await tv.bundle(2);
      await tv.vault.deploy(b1.path);
      await tv.vault.deploy(b2.path);
      // v1's signature block in front of v2's manifest: well formed, by a trusted key, over other bytes.
      const live = join(tv.path, 'releases', b2.releaseId, 'signatures.json');
      overwriteSealed(live, () => copyFileSync(join(tv.path, 'releases', b1.releaseId, 'signatures.json'), live));
      const st = await tv.vault.status();
      assert.equal(st.version, 2, 'the version its directory is named for');
      assert.equal(st.releaseId, b2.releaseId);
      assert.deepEqual(st.signers, []);
      assert.match(st.liveProblem ?? '', /^bad-signature: .*does not verify/);
      assert.deepEqual(st.releases.map((r) => r.checked), [false, false]);
      assert.match(describeStatus(st).join('\n'), /live: version 2, .*; NOT VERIFIED: bad-signature: /);
      // A monitoring check keyed on the exit status or on `ok` must not see a good vault (verify refuses it).
      const json = await sentinel(['vault', 'status', tv.path, '--json']);
      assert.equal(json.code, 1, json.stdout + json.stderr);
      const parsed = JSON.parse(json.stdout) as { ok: boolean; liveProblem: string; notChecked: string[] };
      assert.equal(parsed.ok, false);
      assert.match(parsed.liveProblem, /^bad-signature: /);
      assert.ok(parsed.notChecked.includes('the live tree'), parsed.notChecked.join(', '));
      const human = await sentinel(['vault', 'status', tv.path]);
      assert.equal(human.code, 1, human.stdout + human.stderr);
      assert.match(human.stdout, /NOT VERIFIED: bad-signature: /);
      assert.equal((await sentinel(['vault', 'verify', tv.path, '--live-only'])).code, 1);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a live release directory holding another signed release is named as such', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('status-swapped');
    try {
      const b1 = await tv.bundle(1);
      const b2 = await tv.bundle(2);
      await tv.vault.deploy(b1.path);
      await tv.vault.deploy(b2.path);
      // v1's manifest and signatures (validly signed) inside v2's directory.
      for (const f of ['manifest.json', 'signatures.json']) {
        const dest = join(tv.path, 'releases', b2.releaseId, f);
        overwriteSealed(dest, () => copyFileSync(join(tv.path, 'releases', b1.releaseId, f), dest));
      }
      const st = await tv.vault.status();
      assert.deepEqual(st.signers, []);
      assert.match(st.liveProblem ?? '', new RegExp(`^tampered: release directory is named ${b2.releaseId} but holds release ${b1.releaseId}`));
      assert.equal((await tv.vault.verify({ scope: 'live' })).ok, false);
    } finally {
      await closeDeps(tv.deps);
    }
  });
  test('a vault it finds unsealed is not ok: exit 1 and ok false, as vault verify refuses it', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('status-unsealed');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const releases = join(tv.path, 'releases');
      // The first step of any tamper: +i lifted from the directory of kept releases.
      run('chattr', ['-i', releases]);
      try {
        const json = await sentinel(['vault', 'status', tv.path, '--json']);
        assert.equal(json.code, 1, json.stdout + json.stderr);
        const parsed = JSON.parse(json.stdout) as { ok: boolean; sealed: boolean; unsealedPaths: string[]; liveProblem: string | null };
        assert.equal(parsed.ok, false, 'ok speaks for the seal too');
        assert.equal(parsed.sealed, false);
        assert.equal(parsed.liveProblem, null, 'the live release itself still checks out');
        assert.deepEqual(parsed.unsealedPaths, [releases]);
        const human = await sentinel(['vault', 'status', tv.path]);
        assert.equal(human.code, 1, human.stdout + human.stderr);
        assert.match(human.stdout, /sealed: NO \(/);
        assert.equal((await sentinel(['vault', 'verify', tv.path, '--live-only'])).code, 1, 'verify refuses it too');
      } finally {
        run('chattr', ['+i', releases]);
      }
      const sealedAgain = await sentinel(['vault', 'status', tv.path, '--json']);
      assert.equal(sealedAgain.code, 0, sealedAgain.stdout + sealedAgain.stderr);
      assert.equal((JSON.parse(sealedAgain.stdout) as { ok: boolean }).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
