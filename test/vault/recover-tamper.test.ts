// Recovery never turns a tamper into a rollback or a deletion. A release that recovery cannot read
// (a damaged or symlinked manifest, a missing directory) is not debris of an interrupted operation
// of ours: every release a deploy, heal or rollback puts in releases/ is complete before it is moved
// there. With a file dropped into staging/ (so that opening the vault runs recovery), each case below
// must leave `current`, the release and its stored bundle where they were, and verify must still name
// the damage; a heal then restores the live release from its stored bundle.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openVault } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, removeSealed, run } from '../helpers/vault-factory.js';
import type { TestVault } from '../helpers/vault-factory.js';

after(cleanupAll);

const chattr = (flag: '+i' | '-i', ...paths: string[]) => run('chattr', [flag, ...paths]);
const liveDirOf = (tv: TestVault): string => readlinkSync(join(tv.path, 'current')).split('/').pop()!;

/** v1 and v2 deployed (v2 live): the two release directory names. */
async function twoReleases(label: string): Promise<{ tv: TestVault; v1: string; v2: string }> {
  const tv = await makeVault(label);
  const b1 = await tv.bundle(1);
  await tv.vault.deploy(b1.path);
  const b2 = await tv.bundle(2);
  await tv.vault.deploy(b2.path);
  return { tv, v1: b1.releaseId, v2: b2.releaseId };
}

type Damage = (tv: TestVault, dir: string) => void;

const DAMAGE: Record<string, Damage> = {
  'a manifest cut to one byte': (tv, dir) => {
    const rel = join(tv.path, 'releases', dir);
    chattr('-i', rel, join(rel, 'manifest.json'));
    writeFileSync(join(rel, 'manifest.json'), '{');
    chattr('+i', join(rel, 'manifest.json'), rel);
  },
  'a manifest replaced by a symlink to a copy of itself': (tv, dir) => {
    const rel = join(tv.path, 'releases', dir);
    const copy = join(tv.path, '..', `${dir}-manifest-copy.json`);
    chattr('-i', rel, join(rel, 'manifest.json'));
    copyFileSync(join(rel, 'manifest.json'), copy);
    unlinkSync(join(rel, 'manifest.json'));
    symlinkSync(copy, join(rel, 'manifest.json'));
    chattr('+i', rel);
  },
  'the release directory removed': (tv, dir) => {
    const releases = join(tv.path, 'releases');
    chattr('-i', releases);
    removeSealed(join(releases, dir));
    chattr('+i', releases);
  },
};

describe('recovery at open leaves a release it cannot read where it is', () => {
  for (const [what, damage] of Object.entries(DAMAGE)) {
    test(`the live release, ${what}: current and its stored bundle stay, verify names it, heal restores it`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const { tv, v2 } = await twoReleases('rt-live');
      try {
        damage(tv, v2);
        writeFileSync(join(tv.path, 'staging', 'leftover'), 'x'); // recovery runs at the next open
        const vault = await openVault(tv.path, tv.deps);
        assert.equal(liveDirOf(tv), v2, 'current was not repointed');
        assert.ok(existsSync(join(tv.path, 'bundles', `${v2}.bundle`)), "the live release's stored bundle is kept");
        const report = await vault.verify({ scope: 'live' });
        assert.equal(report.ok, false, 'verify still names the damage');
        assert.ok(report.problems.some((p) => p.path.startsWith(`releases/${v2}`)), JSON.stringify(report.problems));
        const healed = await vault.heal();
        assert.equal(healed.version, 2);
        assert.equal((await vault.verify({ scope: 'live' })).ok, true);
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }

  test('a kept release that is not live, its manifest cut: it and its stored bundle stay, and the full verify names it', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { tv, v1, v2 } = await twoReleases('rt-kept');
    try {
      DAMAGE['a manifest cut to one byte']!(tv, v1);
      writeFileSync(join(tv.path, 'staging', 'leftover'), 'x');
      const vault = await openVault(tv.path, tv.deps);
      assert.equal(liveDirOf(tv), v2);
      assert.ok(existsSync(join(tv.path, 'releases', v1)), 'the damaged kept release is not deleted');
      assert.ok(existsSync(join(tv.path, 'bundles', `${v1}.bundle`)), 'nor its stored bundle');
      const report = await vault.verify();
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p) => p.path.startsWith(`releases/${v1}`)), JSON.stringify(report.problems));
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
