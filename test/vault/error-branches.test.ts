// Error branches of deploy (invariant 4, docs/VAULT.md#invariants: every error branch): a failure at any step
// before the pointer swap leaves the vault as it was, staging empty, the bundle's fd closed and a
// consumed bundle back where it came from, so the same bundle can be deployed again afterwards.
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, lsattrImmutable, makeVault, run, snapshot } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';
import { openVault } from '../../src/vault/index.js';
import { isSentinelError } from '../../src/core/errors.js';

after(() => cleanupAll());

/** Descriptors of this process that are open on `path`. */
function openFdsOn(path: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) out.push(fd);
    } catch {
      // The descriptor readdir itself used is gone by now.
    }
  }
  return out;
}

const STEPS = ['verified', 'staged', 'sealed-release', 'before-swap'] as const;

describe('deploy error branches before the swap', () => {
  for (const at of STEPS) {
    for (const consume of [false, true]) {
      test(`a failure at "${at}"${consume ? ' (consumed bundle)' : ''}: vault unchanged, staging empty, fd closed, bundle kept, redeploy works`, async (t) => {
        if (needs(t, isRoot(), 'root')) return;
        const tv = await makeVault(`err-${at}-${consume ? 'c' : 'k'}`);
        try {
          await tv.vault.deploy((await tv.bundle(1)).path);
          const b2 = await tv.bundle(2);
          const bytes = readFileSync(b2.path);
          const mode = statSync(b2.path).mode & 0o7777;
          const before = snapshot(tv.path);
          const failing = await openVault(tv.path, {
            ...tv.deps,
            hook: (s) => (s === at ? Promise.reject(new Error(`injected failure at ${s}`)) : Promise.resolve()),
          });
          await assert.rejects(failing.deploy(b2.path, { consume }), /injected failure/);
          assert.deepEqual(snapshot(tv.path), before, 'vault changed by a failed deploy');
          assert.deepEqual(stagingLeftovers(tv.path), [], 'staging left behind');
          assert.deepEqual(openFdsOn(b2.path), [], 'bundle descriptor left open');
          assert.deepEqual(readFileSync(b2.path), bytes, 'the bundle is back where it was');
          assert.equal(statSync(b2.path).mode & 0o7777, mode, 'the bundle keeps its mode');
          const r = await tv.vault.deploy(b2.path);
          assert.equal(r.version, 2);
          assert.equal((await tv.vault.verify()).ok, true);
        } finally {
          await closeDeps(tv.deps);
        }
      });
    }
  }
});

describe('a release swapped for a symlink before the swap', () => {
  test('a heal that fails after the move takes the symlink out of releases/ without following it', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('err-symlink');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const releases = join(tv.path, 'releases');
      const evil = join(tv.path, '..', 'evil-symlink');
      mkdirSync(evil);
      writeFileSync(join(evil, 'keep'), 'the attacker directory is left alone\n');
      const before = snapshot(tv.path);
      const live = readlinkSync(join(tv.path, 'current'));
      let swapped = '';
      const racing = await openVault(tv.path, {
        ...tv.deps,
        hook: (s) => {
          if (s !== 'before-swap') return Promise.resolve();
          // A root process puts a symlink where the moved release is, as a swap racing the move does.
          swapped = readdirSync(releases).find((n) => n.endsWith('.h1'))!;
          const moved = join(releases, swapped);
          run('chattr', ['-i', releases, moved]);
          renameSync(moved, join(evil, 'taken'));
          symlinkSync(evil, moved);
          run('chattr', ['+i', releases]);
          return Promise.reject(new Error('injected failure after the swap for a symlink'));
        },
      });
      await assert.rejects(racing.heal(), /injected failure/);
      assert.ok(swapped !== '', 'the hook ran');
      assert.deepEqual(readdirSync(releases).filter((n) => lstatSync(join(releases, n)).isSymbolicLink()), [], 'a symlink left in releases/');
      assert.equal(readlinkSync(join(tv.path, 'current')), live);
      assert.deepEqual(snapshot(tv.path), before, 'vault changed by a failed heal');
      assert.equal(readFileSync(join(evil, 'keep'), 'utf8'), 'the attacker directory is left alone\n');
      assert.equal((await tv.vault.verify()).ok, true);
      assert.equal((await tv.vault.heal()).kind, 'heal');
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});

describe('the kept bundle is the verified one', () => {
  test('a bundle file replaced after verification: the vault keeps the verified bytes (copy), or refuses (consume)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('err-swap');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const b2 = await tv.bundle(2);
      const bytes = readFileSync(b2.path);
      const swapIn = (path: string) => {
        const other = `${path}.other`;
        writeFileSync(other, 'not the verified bundle');
        renameSync(other, path);
      };
      const swapping = await openVault(tv.path, {
        ...tv.deps,
        hook: (s) => {
          if (s === 'verified') swapIn(b2.path);
          return Promise.resolve();
        },
      });
      const before = snapshot(tv.path);
      await assert.rejects(swapping.deploy(b2.path, { consume: true }), (e) => isSentinelError(e, 'tampered'));
      assert.deepEqual(snapshot(tv.path), before, 'vault changed');
      assert.equal(readFileSync(b2.path, 'utf8'), 'not the verified bundle', 'the file that was moved is put back');
      writeFileSync(b2.path, bytes);
      await swapping.deploy(b2.path);
      assert.deepEqual(readFileSync(join(tv.path, 'bundles', `${b2.releaseId}.bundle`)), bytes, 'the kept bundle is the verified one');
      assert.equal((await tv.vault.heal()).kind, 'heal');
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});

describe('recovery follows only verified releases', () => {
  test('with `current` gone, recovery points it at the newest release whose signatures verify, not at a planted one', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('err-repoint');
    try {
      const b1 = await tv.bundle(1);
      await tv.vault.deploy(b1.path);
      // A root attacker plants a copy of the release under a later-sorting name and removes the pointer.
      const releases = join(tv.path, 'releases');
      const planted = join(releases, 'r00000001-ffffffffffff');
      run('chattr', ['-i', tv.path, releases]);
      run('cp', ['-a', join(releases, b1.releaseId), planted]);
      run('rm', [join(tv.path, 'current')]);
      run('chattr', ['+i', releases, tv.path]);
      const r = await tv.vault.recover();
      assert.equal(r.repointedTo, b1.releaseId);
      assert.equal(readlinkSync(join(tv.path, 'current')), `releases/${b1.releaseId}`);
      assert.equal((await tv.vault.verify({ scope: 'live' })).ok, true);
      // A full verify names the planted copy: its name is not the id of the release it holds.
      const all = await tv.vault.verify();
      assert.deepEqual(all.problems.map((p) => `${p.code}@${p.path}`), ['tampered@releases/r00000001-ffffffffffff']);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});

describe('pruning that fails', () => {
  test('a kept release that cannot be moved out stays sealed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('err-prune');
    const staging = join(tv.path, 'staging');
    try {
      const b1 = await tv.bundle(1);
      for (const b of [b1, await tv.bundle(2), await tv.bundle(3)]) await tv.vault.deploy(b.path);
      const b4 = await tv.bundle(4);
      // After the commit, staging/ refuses the move of the pruned release into it.
      const blocking = await openVault(tv.path, {
        ...tv.deps,
        hook: (s) => {
          if (s === 'highest-updated') run('chattr', ['+i', staging]);
          return Promise.resolve();
        },
      });
      // Past the commit point: v4 is live, so the deploy succeeds with a warning rather than failing.
      const r = await blocking.deploy(b4.path);
      assert.equal(r.version, 4);
      assert.match(r.warning ?? '', /after the swap failed/);
      run('chattr', ['-i', staging]);
      rmSync(join(staging, '.lock'), { force: true });
      assert.ok(lsattrImmutable(join(tv.path, 'releases', b1.releaseId)), 'the release that was not pruned is still +i');
      assert.ok(lsattrImmutable(join(tv.path, 'releases')));
    } finally {
      run('chattr', ['-i', staging]);
      await closeDeps(tv.deps);
    }
  });
});
