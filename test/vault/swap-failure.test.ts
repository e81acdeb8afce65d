// A deploy that fails before its commit point (the swap of `current`) leaves the vault as it was and
// is reported as a rejected deploy; one that fails after it (highest.json, prune) is live and is
// reported as a success with a warning, never as a failed deploy.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultFlagStore } from '../../src/adapters/flags.js';
import type { FlagStore } from '../../src/adapters/flags.js';
import { SentinelError } from '../../src/core/errors.js';
import { openVault } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeDeps, makeVault } from '../helpers/vault-factory.js';

after(cleanupAll);

const realOf = (p: string): string | null => {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
};

/** The real flag store, except that once armed the next unseal of `root` fails (EPERM-like). */
function failingRootUnseal(): { store: FlagStore; arm(root: string): void } {
  const real = defaultFlagStore();
  let armed: string | null = null;
  const check = (paths: string[], on: boolean) => {
    if (armed !== null && !on && paths.some((p) => realOf(p) === armed)) {
      armed = null;
      throw new SentinelError('not-permitted', 'injected: cannot lift +i', { where: paths[0] });
    }
  };
  const store: FlagStore = {
    kind: real.kind,
    getFlags: (p) => real.getFlags(p),
    setFlag: async (p, flag, on) => {
      check([p], on);
      await real.setFlag(p, flag, on);
    },
    ...(real.setFlagMany !== undefined ? { setFlagMany: async (ps: string[], flag: number, on: boolean) => (check(ps, on), real.setFlagMany!(ps, flag, on)) } : {}),
    ...(real.getFlagsMany !== undefined ? { getFlagsMany: (ps: string[]) => real.getFlagsMany!(ps) } : {}),
    ...(real.getImmutableMany !== undefined ? { getImmutableMany: (ps: string[]) => real.getImmutableMany!(ps) } : {}),
  };
  return { store, arm: (root) => (armed = realpathSync(root)) };
}

const liveDir = (path: string) => readlinkSync(join(path, 'current')).split('/').pop()!;

describe('a deploy that fails around its commit point', () => {
  test('the swap fails (root cannot be unsealed): rejected, nothing kept, version not burnt', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const inject = failingRootUnseal();
    let vaultPath = '';
    let fail = false;
    const deps = makeDeps({ flags: inject.store, hook: (step) => Promise.resolve(fail && step === 'before-swap' ? inject.arm(vaultPath) : undefined) });
    const tv = await makeVault('swap-fails', { deps });
    vaultPath = tv.path;
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const before = liveDir(tv.path);
      const highest = readFileSync(join(tv.path, 'state', 'highest.json'), 'utf8');
      const b2 = await tv.bundle(2);
      fail = true;
      await assert.rejects(tv.vault.deploy(b2.path), (e: Error & { code?: string }) => e.code === 'not-permitted' && /injected/.test(e.message));
      fail = false;
      assert.equal(liveDir(tv.path), before, 'current unchanged');
      assert.equal(readFileSync(join(tv.path, 'state', 'highest.json'), 'utf8'), highest, 'highest unchanged');
      const st = await tv.vault.status();
      assert.deepEqual(st.releases.map((r) => r.version), [1], 'the release is not kept');
      assert.equal(existsSync(join(tv.path, 'bundles', `${st.releases[0]!.releaseId}.bundle`)), true);
      assert.equal(st.highestVersion, 1, 'version 2 not burnt');
      assert.ok(deps.events.some((e) => e.kind === 'reject' && e.code === 'not-permitted'), 'a reject event is emitted');
      const again = await (await openVault(tv.path, deps)).deploy(b2.path);
      assert.equal(again.version, 2, 'the same bundle deploys later');
      assert.deepEqual((await tv.vault.verify()).problems, []);
    } finally {
      await closeDeps(deps);
    }
  });

  for (const at of ['swapped', 'highest-updated', 'pruned']) {
    test(`a failure after the commit point (at ${at}): success with a warning, the new release live`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      let fail = false;
      const deps = makeDeps({ hook: (step) => (fail && step === at ? Promise.reject(new SentinelError('io', `injected at ${step}`, { where: step })) : Promise.resolve()) });
      const tv = await makeVault(`after-commit-${at}`, { deps });
      try {
        for (let v = 1; v <= 3; v++) await tv.vault.deploy((await tv.bundle(v)).path);
        fail = true;
        const r = await tv.vault.deploy((await tv.bundle(4)).path);
        fail = false;
        assert.equal(r.version, 4);
        assert.match(r.warning ?? '', new RegExp(`injected at ${at}`));
        assert.equal(liveDir(tv.path), r.releaseDir);
        assert.ok(deps.events.some((e) => (e.kind === 'deploy' || e.kind === 'deploy-tail') && e.version === 4 && /injected/.test(e.detail ?? '')), 'the warning is in the deploy event, or in the deploy-tail event when the tail failed');
        assert.ok(!deps.events.some((e) => e.kind === 'reject'), 'no reject event');
        const next = await (await openVault(tv.path, deps)).deploy((await tv.bundle(5)).path);
        assert.equal(next.version, 5);
        assert.deepEqual((await tv.vault.verify()).problems, []);
      } finally {
        await closeDeps(deps);
      }
    });
  }

  test('a deploy whose tail did not raise highest.json, then a rollback and a recovery: the version rolled back from stays burnt', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    let fail = false;
    const deps = makeDeps({ hook: (step) => (fail && step === 'swapped' ? Promise.reject(new SentinelError('io', 'injected at swapped', { where: step })) : Promise.resolve()) });
    const tv = await makeVault('rollback-burnt', { deps });
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const b2 = await tv.bundle(2);
      fail = true;
      const r = await tv.vault.deploy(b2.path);
      fail = false;
      assert.match(r.warning ?? '', /injected at swapped/, 'live, highest.json not raised');
      assert.equal((await tv.vault.rollback()).version, 1);
      await tv.vault.recover();
      assert.equal((await tv.vault.status()).highestVersion, 2, 'the version rolled back from is still the highest');
      await assert.rejects(tv.vault.deploy(b2.path), (e: Error & { code?: string }) => e.code === 'rollback', 'the bundle rolled back from is refused');
      assert.deepEqual((await tv.vault.verify()).problems, []);
    } finally {
      await closeDeps(deps);
    }
  });
});
