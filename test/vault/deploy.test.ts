// Vault init and deploy against the real kernel: every live file and directory +i (read back with
// lsattr), the kernel refusing writes into the vault, status, a second version, pruning, the lock.
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isSentinelError } from '../../src/core/errors.js';
import { initVault, openVault, readVaultInfo } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, lsattrImmutable, makeDeps, makeVault, sealablePaths, tempDir, testKey } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';

after(cleanupAll);

function expectEperm(what: string, act: () => void): void {
  assert.throws(act, (e: NodeJS.ErrnoException) => e.code === 'EPERM' || e.code === 'EACCES', `${what} should be refused by the kernel`);
}

describe('vault deploy (real chattr)', () => {
  test('init seals an empty vault; verify reports "no release deployed yet" (not-found, never tampered)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('init');
    try {
      for (const p of ['.', 'vault.json', 'releases', 'bundles', 'state', 'state/highest.json']) {
        assert.ok(lsattrImmutable(join(tv.path, p)), `${p} must be +i after init`);
      }
      assert.equal(lsattrImmutable(join(tv.path, 'staging')), false, 'staging/ is scratch space');
      const r = await tv.vault.verify();
      assert.equal(r.ok, false);
      assert.deepEqual(r.problems.map((p) => [p.code, p.path, p.message]), [['not-found', 'current', 'no release deployed yet: nothing to verify']]);
      const info = await readVaultInfo(tv.path);
      assert.equal(info.vaultId, tv.vaultId);
      assert.equal(info.highestVersion, 0);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('init refuses a non-empty directory and leaves it as it was', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('nonempty');
    writeFileSync(join(dir, 'x'), 'x');
    const deps = makeDeps();
    try {
      await assert.rejects(initVault(dir, { trust: [testKey('vault-a').public], threshold: 1 }, deps), (e) => isSentinelError(e, 'exists'));
      assert.equal(readFileSync(join(dir, 'x'), 'utf8'), 'x');
    } finally {
      await closeDeps(deps);
    }
  });

  test('init on a filesystem without +i support fails and leaves nothing', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const base = tempDir('ramfs');
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    const { spawnSync } = await import('node:child_process');
    const m = spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt]);
    if (needs(t, m.status === 0, 'mount ramfs')) return;
    const deps = makeDeps();
    try {
      await assert.rejects(initVault(join(mnt, 'v'), { trust: [testKey('vault-a').public], threshold: 1 }, deps), (e) => isSentinelError(e, 'no-immutable-support'));
      const { readdirSync } = await import('node:fs');
      assert.deepEqual(readdirSync(mnt), [], 'nothing left behind');
    } finally {
      spawnSync('umount', [mnt]);
      await closeDeps(deps);
    }
  });

  test('init creates missing parents 0755 whatever the umask; a failed init removes them again', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const base = tempDir('parents');
    const deps = makeDeps();
    const old = process.umask(0o077);
    try {
      const vault = await initVault(join(base, 'var', 'lib', 'omnimind', 'phi-engine'), { trust: [testKey('vault-a').public], threshold: 1 }, deps);
      assert.equal(vault.path, join(base, 'var', 'lib', 'omnimind', 'phi-engine'));
      const { statSync } = await import('node:fs');
      for (const p of [join(base, 'var'), join(base, 'var', 'lib'), join(base, 'var', 'lib', 'omnimind')]) assert.equal(statSync(p).mode & 0o777, 0o755, p);
      writeFileSync(join(base, 'file'), 'x');
      await assert.rejects(initVault(join(base, 'file', 'v'), { trust: [testKey('vault-a').public], threshold: 1 }, deps), (e) => isSentinelError(e, 'exists'));
      const { spawnSync } = await import('node:child_process');
      const mnt = join(base, 'mnt');
      mkdirSync(mnt);
      if (needs(t, spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt]).status === 0, 'mount ramfs')) return;
      try {
        await assert.rejects(initVault(join(mnt, 'a', 'b', 'v'), { trust: [testKey('vault-a').public], threshold: 1 }, deps), (e) => isSentinelError(e, 'no-immutable-support'));
        const { readdirSync } = await import('node:fs');
        assert.deepEqual(readdirSync(mnt), [], 'the parents it created are gone too');
      } finally {
        spawnSync('umount', [mnt]);
      }
    } finally {
      process.umask(old);
      await closeDeps(deps);
    }
  });

  test('deploy seals every live file and directory; the kernel refuses writes', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('seal');
    try {
      const b = await tv.bundle(1);
      const r = await tv.vault.deploy(b.path);
      assert.equal(r.version, 1);
      assert.equal(r.releaseId, b.releaseId);
      assert.deepEqual(r.signers, [tv.keys[0]!.public.id]);
      assert.equal(readlinkSync(join(tv.path, 'current')), `releases/${b.releaseId}`);
      const release = join(tv.path, 'releases', b.releaseId);
      const paths = [...sealablePaths(release), join(tv.path, 'bundles', `${b.releaseId}.bundle`), tv.path, join(tv.path, 'vault.json'), join(tv.path, 'state', 'highest.json')];
      for (const p of paths) assert.ok(lsattrImmutable(p), `${p} must be +i`);
      assert.equal(readFileSync(join(liveTree(tv.path), 'VERSION'), 'utf8'), 'v1\n');

      const tree = liveTree(tv.path);
      expectEperm('write to a live file', () => writeFileSync(join(tree, 'VERSION'), 'evil'));
      expectEperm('append to a live file', () => appendFileSync(join(tree, 'phi/engine.py'), 'evil'));
      expectEperm('create in a live dir', () => writeFileSync(join(tree, 'phi/new.py'), 'evil'));
      expectEperm('unlink a live file', () => unlinkSync(join(tree, 'config/phi.json')));
      expectEperm('rename a live file', () => renameSync(join(tree, 'VERSION'), join(tree, 'VERSION2')));
      expectEperm('repoint current', () => symlinkSync('releases/x', join(tv.path, 'current.tmp')));
      expectEperm('unlink current', () => unlinkSync(join(tv.path, 'current')));
      expectEperm('rewrite highest.json', () => writeFileSync(join(tv.path, 'state', 'highest.json'), '{"version":0,"releaseId":null}'));
      expectEperm('rewrite vault.json', () => writeFileSync(join(tv.path, 'vault.json'), '{}'));

      const v = await tv.vault.verify();
      assert.deepEqual(v.problems, []);
      assert.equal(v.ok, true);
      assert.equal(v.version, 1);
      assert.equal(v.checkedFiles, 5);

      const st = await tv.vault.status();
      assert.equal(st.version, 1);
      assert.equal(st.sealed, true, JSON.stringify(st.unsealedPaths));
      assert.equal(st.highestVersion, 1);
      assert.ok(st.deployedAt !== null);
      assert.deepEqual(st.signers, [tv.keys[0]!.public.id]);

      const kinds = new Set(tv.deps.events.map((e) => e.kind));
      assert.ok(kinds.has('seal') && kinds.has('unseal') && kinds.has('deploy'));
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a second version replaces the first; pruning keeps the newest three', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('versions');
    try {
      const ids: string[] = [];
      for (let v = 1; v <= 5; v++) {
        const b = await tv.bundle(v);
        ids.push(b.releaseId);
        const r = await tv.vault.deploy(b.path);
        assert.equal(r.version, v);
        assert.equal(readFileSync(join(liveTree(tv.path), 'VERSION'), 'utf8'), `v${v}\n`);
      }
      const st = await tv.vault.status();
      assert.deepEqual(st.releases.map((r) => r.version), [3, 4, 5]);
      assert.deepEqual(st.releases.map((r) => r.live), [false, false, true]);
      assert.equal(st.highestVersion, 5);
      const { readdirSync } = await import('node:fs');
      assert.deepEqual(readdirSync(join(tv.path, 'bundles')).sort(), ids.slice(2).map((i) => `${i}.bundle`).sort());
      assert.deepEqual(stagingLeftovers(tv.path), []);
      assert.equal((await tv.vault.verify()).ok, true);
      const b6 = await tv.bundle(6);
      await tv.vault.deploy(b6.path, { consume: true });
      const { existsSync } = await import('node:fs');
      assert.equal(existsSync(b6.path), false, 'a consumed bundle is moved into the vault');
      assert.ok(lsattrImmutable(join(tv.path, 'bundles', `${b6.releaseId}.bundle`)));
      const reopened = await openVault(tv.path, tv.deps);
      assert.equal((await reopened.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('the result is reported (onLive) once the new release is live, before highest.json and pruning; a refused deploy reports none', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('on-live');
    try {
      for (let v = 1; v <= 3; v++) await tv.vault.deploy((await tv.bundle(v)).path);
      const oldest = (await tv.vault.status()).releases[0]!.releaseDir;
      const highest = (): number => (JSON.parse(readFileSync(join(tv.path, 'state', 'highest.json'), 'utf8')) as { version: number }).version;
      const seen: { version: number; current: string; releases: string[]; highest: number }[] = [];
      const onLive = (live: { version: number }): void => {
        seen.push({ version: live.version, current: readlinkSync(join(tv.path, 'current')), releases: readdirSync(join(tv.path, 'releases')), highest: highest() });
        throw new Error('what onLive throws is ignored');
      };
      await assert.rejects(tv.vault.deploy((await tv.bundle(2)).path, { onLive }), (e) => isSentinelError(e, 'rollback'));
      assert.equal(seen.length, 0, 'a refused deploy reports no result');
      const r = await tv.vault.deploy((await tv.bundle(4)).path, { onLive });
      assert.equal(r.warning, undefined);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.version, 4);
      assert.equal(seen[0]!.current, `releases/${r.releaseDir}`, 'live when reported');
      assert.ok(seen[0]!.releases.includes(oldest), 'not yet pruned when reported');
      assert.equal(seen[0]!.highest, 3, 'highest.json is raised after the report');
      assert.equal(readdirSync(join(tv.path, 'releases')).includes(oldest), false, 'pruned before deploy resolves');
      assert.equal(highest(), 4, 'raised before deploy resolves');
      assert.deepEqual(stagingLeftovers(tv.path), []);
      assert.deepEqual((await tv.vault.verify()).problems, []);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
