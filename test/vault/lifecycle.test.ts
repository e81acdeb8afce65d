// Heal, rollback and the vault lock on a real vault: heal restores a tampered release from its stored
// signed bundle, rollback goes to the previous signed release (and the version rolled back from stays
// burnt), concurrent deploys are serialised, and explicit recovery reports what it did.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isSentinelError } from '../../src/core/errors.js';
import { openVault } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';

after(cleanupAll);

describe('vault heal, rollback, lock', () => {
  test('heal restores a tampered live release and removes the tampered copy', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('heal');
    try {
      const b = await tv.bundle(1);
      await tv.vault.deploy(b.path);
      const f = join(liveTree(tv.path), 'phi/engine.py');
      const good = readFileSync(f, 'utf8');
      run('chattr', ['-i', f]);
      writeFileSync(f, 'import evil\n');
      assert.equal((await tv.vault.verify()).ok, false);

      const r = await tv.vault.heal();
      assert.equal(r.kind, 'heal');
      assert.equal(r.releaseId, b.releaseId);
      assert.equal(r.releaseDir, `${b.releaseId}.h1`);
      assert.equal(readFileSync(join(liveTree(tv.path), 'phi/engine.py'), 'utf8'), good);
      const v = await tv.vault.verify();
      assert.deepEqual(v.problems, []);
      assert.deepEqual(readdirSync(join(tv.path, 'releases')), [`${b.releaseId}.h1`]);
      assert.deepEqual(stagingLeftovers(tv.path), []);
      assert.ok(tv.deps.events.some((e) => e.kind === 'heal'));
      // A second heal works too (h2), and the vault still verifies.
      await tv.vault.heal();
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('heal recovers from a fifo planted in the live tree', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('heal-fifo');
    try {
      const b = await tv.bundle(1);
      await tv.vault.deploy(b.path);
      const tree = liveTree(tv.path);
      run('chattr', ['-i', tree]);
      run('mkfifo', [join(tree, 'pipe')]);
      run('chattr', ['+i', tree]);
      const v = await tv.vault.verify();
      assert.ok(v.problems.some((p) => p.code === 'tampered' && p.path.endsWith('tree/pipe')), JSON.stringify(v.problems));
      await tv.vault.heal();
      assert.deepEqual((await tv.vault.verify()).problems, []);
      assert.deepEqual(stagingLeftovers(tv.path), []);
      assert.deepEqual(readdirSync(join(tv.path, 'releases')), [`${b.releaseId}.h1`]);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('heal refuses a stored bundle that was tampered with', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('heal-bad');
    try {
      const b = await tv.bundle(1);
      await tv.vault.deploy(b.path);
      const stored = join(tv.path, 'bundles', `${b.releaseId}.bundle`);
      run('chattr', ['-i', stored]);
      const bytes = readFileSync(stored);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
      writeFileSync(stored, bytes);
      await assert.rejects(tv.vault.heal(), (e) => isSentinelError(e, 'hash-mismatch'));
      assert.equal(readlinkTarget(tv.path), `releases/${b.releaseId}`);
      assert.deepEqual(stagingLeftovers(tv.path), []);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('rollback goes to the previous signed release; the newer version cannot come back', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('rollback');
    try {
      const b1 = await tv.bundle(1);
      const b2 = await tv.bundle(2);
      await tv.vault.deploy(b1.path);
      await tv.vault.deploy(b2.path);
      const r = await tv.vault.rollback();
      assert.equal(r.kind, 'rollback');
      assert.equal(r.version, 1);
      assert.equal(r.previousReleaseId, b2.releaseId);
      assert.equal(readFileSync(join(liveTree(tv.path), 'VERSION'), 'utf8'), 'v1\n');
      assert.equal((await tv.vault.verify()).ok, true);
      const st = await tv.vault.status();
      assert.equal(st.version, 1);
      assert.equal(st.highestVersion, 2);
      await assert.rejects(tv.vault.deploy(b2.path), (e) => isSentinelError(e, 'rollback'));
      await assert.rejects(tv.vault.rollback(), (e) => isSentinelError(e, 'not-found'));
      const b3 = await tv.bundle(3);
      assert.equal((await tv.vault.deploy(b3.path)).version, 3);
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('rollback refuses a kept release that was tampered with, and nothing changes', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('rollback-bad');
    try {
      const b1 = await tv.bundle(1);
      const b2 = await tv.bundle(2);
      await tv.vault.deploy(b1.path);
      await tv.vault.deploy(b2.path);
      const f = join(tv.path, 'releases', b1.releaseId, 'tree', 'VERSION');
      run('chattr', ['-i', f]);
      writeFileSync(f, 'v9\n');
      run('chattr', ['+i', f]);
      await assert.rejects(tv.vault.rollback(), (e) => isSentinelError(e, 'hash-mismatch'));
      assert.equal(readlinkTarget(tv.path), `releases/${b2.releaseId}`);
      assert.equal((await tv.vault.verify({ scope: 'live' })).ok, true);
      // A full verify names the tampered kept release before anyone tries to roll back to it.
      const all = await tv.vault.verify();
      assert.deepEqual(all.problems.map((p) => `${p.code}@${p.path}`), [`hash-mismatch@releases/${b1.releaseId}/tree/VERSION`]);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a deploy holding the lock makes a second one wait (or get busy), never interleave', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atStaged = new Promise<void>((r) => (reached = r));
    const tv = await makeVault('lock');
    try {
      const b1 = await tv.bundle(1);
      const b2 = await tv.bundle(2);
      const paused = await openVault(tv.path, {
        ...tv.deps,
        hook: async (s) => {
          if (s === 'staged') {
            reached();
            await gate;
          }
        },
      });
      const first = paused.deploy(b1.path);
      await atStaged;
      const impatient = await openVault(tv.path, { ...tv.deps, lockTimeoutMs: 0 });
      await assert.rejects(impatient.deploy(b2.path), (e) => isSentinelError(e, 'busy'));
      const patient = await openVault(tv.path, { ...tv.deps, lockTimeoutMs: 20_000 });
      const second = patient.deploy(b2.path);
      release();
      const [r1, r2] = await Promise.all([first, second]);
      assert.equal(r1.version, 1);
      assert.equal(r2.version, 2);
      assert.equal(r2.previousReleaseId, b1.releaseId, 'the second deploy ran after the first completed');
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      release();
      await closeDeps(tv.deps);
    }
  });

  test('explicit recover on a clean vault changes nothing and says so', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('recover-clean');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const r = await tv.vault.recover();
      assert.deepEqual(r.removedStaging, []);
      assert.deepEqual(r.removedReleases, []);
      assert.equal(r.repointedTo, null);
      assert.equal(r.resealed, 0);
      assert.equal(r.highestVersion, 1);
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});

function readlinkTarget(vault: string): string {
  return run('readlink', [join(vault, 'current')]).trim();
}
