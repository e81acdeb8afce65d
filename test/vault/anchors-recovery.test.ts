// Trust anchors come before recovery: a root attacker who adds a key to vault.json, plants a release
// signed with it and breaks the live release must not get the sentinel itself to make that release
// live — neither at open (the daemon's start) nor in the recovery a write operation runs first.
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TrustPolicy } from '../../src/core/trust.js';
import { encodeVaultConfig, parseVaultConfig } from '../../src/vault/layout.js';
import { openVault } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, run, testKey } from '../helpers/vault-factory.js';
import type { TestVault } from '../helpers/vault-factory.js';

after(cleanupAll);

const chattr = (flag: '+i' | '-i', ...paths: string[]) => run('chattr', [flag, ...paths]);

/** v1, v2 by the owner; then the attacker's key in vault.json, their v3 deployed and rolled back (kept, not live), the live v2 broken. */
async function hijackedVault(label: string): Promise<{ tv: TestVault; anchors: TrustPolicy; liveDir: string; plantedDir: string }> {
  const tv = await makeVault(label);
  const anchors: TrustPolicy = { keys: [tv.keys[0]!.public], threshold: 1 };
  await tv.vault.deploy((await tv.bundle(1)).path);
  await tv.vault.deploy((await tv.bundle(2)).path);
  const attacker = testKey('attacker');
  const cfgPath = join(tv.path, 'vault.json');
  const cfg = parseVaultConfig(readFileSync(cfgPath, 'utf8'), cfgPath);
  chattr('-i', cfgPath, tv.path);
  unlinkSync(cfgPath);
  writeFileSync(cfgPath, encodeVaultConfig({ ...cfg, trust: { keys: [tv.keys[0]!.public, attacker.public], threshold: 1 } }));
  chattr('+i', cfgPath, tv.path);
  const hijacked = await openVault(tv.path, tv.deps);
  const planted = await hijacked.deploy((await tv.bundle(3, [{ type: 'file', path: 'VERSION', content: 'owned\n' }], { keys: [attacker] })).path);
  const back = await hijacked.rollback();
  assert.equal(back.version, 2);
  const liveDir = readlinkSync(join(tv.path, 'current')).split('/').pop()!;
  // Break the live release: its manifest is gone.
  const rel = join(tv.path, 'releases', liveDir);
  chattr('-i', rel, join(rel, 'manifest.json'));
  rmSync(join(rel, 'manifest.json'));
  return { tv, anchors, liveDir, plantedDir: planted.releaseDir };
}

function liveDirOf(tv: TestVault): string {
  return readlinkSync(join(tv.path, 'current')).split('/').pop()!;
}

describe('trust anchors are checked before recovery', () => {
  test('openVault with anchors (daemon start) does not make the attacker-signed release live', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { tv, anchors, liveDir, plantedDir } = await hijackedVault('anchors-open');
    try {
      writeFileSync(join(tv.path, 'staging', 'leftover'), 'x'); // recovery would run at open
      const vault = await openVault(tv.path, tv.deps, { trust: anchors });
      assert.equal(liveDirOf(tv), liveDir, `recovery at open swapped to ${liveDirOf(tv)} (planted ${plantedDir})`);
      await assert.rejects(vault.heal({ trust: anchors }), (e: Error & { code?: string }) => e.code === 'tampered' && /differs from the trust anchors/.test(e.message));
      assert.equal(liveDirOf(tv), liveDir);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a deploy with anchors refuses before its recovery acts', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { tv, anchors, liveDir, plantedDir } = await hijackedVault('anchors-exclusive');
    try {
      const vault = await openVault(tv.path, tv.deps, { trust: anchors });
      writeFileSync(join(tv.path, 'staging', 'leftover'), 'x'); // left after the open: the deploy's own recovery would run
      const b4 = await tv.bundle(4);
      await assert.rejects(vault.deploy(b4.path, { trust: anchors }), (e: Error & { code?: string }) => e.code === 'tampered' && /differs from the trust anchors/.test(e.message));
      assert.equal(liveDirOf(tv), liveDir, `the deploy's recovery swapped to ${liveDirOf(tv)} (planted ${plantedDir})`);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
