// The bundle kept for heal is the one that was verified (docs/VAULT.md#deploy): a copied bundle is
// written from the bytes the staging pass hashed, so a source rewritten in place during the deploy
// cannot reach the kept copy; a moved-in bundle rewritten through a descriptor its writer still holds
// is refused before the commit point instead of leaving a kept bundle a later heal rejects.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { sentinel } from '../helpers/cli-harness.js';
import { cleanupAll, closeDeps, lsattrImmutable, makeVault, snapshot, stagingLeftovers } from '../helpers/vault-factory.js';
import type { TreeSpec } from '../helpers/vault-factory.js';
import { canKeepWhileStaging } from '../../src/vault/stage.js';
import { openVault } from '../../src/vault/index.js';
import { isSentinelError } from '../../src/core/errors.js';

after(() => cleanupAll());


/** Overwrites the last bytes of `fd`'s file (inside the payload) with something else. */
function scribble(fd: number, size: number): void {
  writeSync(fd, Buffer.from('#rewritten#'), 0, 11, size - 11);
}

describe('a bundle rewritten during deploy', () => {
  test('moved in (consume), rewritten through its writer\'s descriptor: refused, vault unchanged, heal still works', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('kept-c');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const b2 = await tv.bundle(2);
      const size = statSync(b2.path).size;
      // The writer of an inbox file may still hold it open.
      const writerFd = openSync(b2.path, 'r+');
      const before = snapshot(tv.path);
      const v = await openVault(tv.path, { ...tv.deps, hook: (s) => Promise.resolve(s === 'staged' ? scribble(writerFd, size) : undefined) });
      try {
        await assert.rejects(v.deploy(b2.path, { consume: true }), (e) => isSentinelError(e, 'hash-mismatch'));
      } finally {
        closeSync(writerFd);
      }
      assert.deepEqual(snapshot(tv.path), before, 'the vault is as it was');
      assert.deepEqual(stagingLeftovers(tv.path), [], 'staging is empty');
      assert.equal((await tv.vault.verify()).ok, true);
      assert.equal((await tv.vault.status()).version, 1);
      // The kept bundle of the live release is still good for heal.
      await tv.vault.heal();
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  // The copy is written from the bytes the staging pass hashed (docs/VAULT.md#deploy): the source is
  // never read again for it, so a rewrite after staging read it cannot reach the kept copy, and a rewrite
  // before is a hash mismatch of the payload itself.
  for (const at of ['verified', 'staged'] as const) {
    test(`copied, the source rewritten in place at "${at}": ${at === 'verified' ? 'refused, vault unchanged' : 'the kept copy holds the verified bytes'}`, async (t) => {
      if (needs(t, isRoot(), 'root') || needs(t, canKeepWhileStaging(), 'native addon with stageFilesKeptAtAsync')) return;
      const tv = await makeVault(`kept-k-${at}`);
      try {
        await tv.vault.deploy((await tv.bundle(1)).path);
        const b2 = await tv.bundle(2);
        const original = readFileSync(b2.path);
        const writerFd = openSync(b2.path, 'r+');
        const before = snapshot(tv.path);
        const v = await openVault(tv.path, { ...tv.deps, hook: (s) => Promise.resolve(s === at ? scribble(writerFd, original.length) : undefined) });
        try {
          if (at === 'verified') await assert.rejects(v.deploy(b2.path), (e) => isSentinelError(e, 'hash-mismatch'));
          else await v.deploy(b2.path);
        } finally {
          closeSync(writerFd);
        }
        assert.notDeepEqual(readFileSync(b2.path), original, 'the source was rewritten');
        assert.deepEqual(stagingLeftovers(tv.path), [], 'staging is empty');
        if (at === 'verified') {
          assert.deepEqual(snapshot(tv.path), before, 'the vault is as it was');
          assert.equal((await tv.vault.status()).version, 1);
        } else {
          const s = await tv.vault.status();
          assert.equal(s.version, 2);
          assert.deepEqual(readFileSync(join(tv.path, 'bundles', `${s.releaseId}.bundle`)), original, 'the kept copy is the verified bundle');
        }
        assert.equal((await tv.vault.verify()).ok, true, 'verify (kept bundles included) passes');
        await tv.vault.heal();
        assert.equal((await tv.vault.verify()).ok, true);
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }
});

describe('the kept copy written while staging', () => {
  test('byte for byte the bundle: empty files first, between and last, a file across the 4 MiB chunk, many small files; 0444 and sealed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('kept-bytes');
    try {
      const tree: TreeSpec = [
        { type: 'file', path: 'a-empty', content: '' },
        { type: 'file', path: 'b-big', content: randomBytes(5 * 1024 * 1024 + 3) },
        { type: 'file', path: 'c-empty', content: '' },
        { type: 'dir', path: 'd' },
        ...Array.from({ length: 40 }, (_, i) => ({ type: 'file' as const, path: `d/f${String(i).padStart(2, '0')}`, content: randomBytes(i * 97 + 1) })),
        { type: 'file', path: 'z-empty', content: '' },
      ];
      const b = await tv.bundle(1, tree);
      await tv.vault.deploy(b.path);
      const s = await tv.vault.status();
      const kept = join(tv.path, 'bundles', `${s.releaseId}.bundle`);
      assert.deepEqual(readFileSync(kept), readFileSync(b.path));
      assert.equal(statSync(kept).mode & 0o7777, 0o444);
      assert.equal(lsattrImmutable(kept), true);
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  // A write into the kept copy that fails (here: a file size limit the staged payload files stay
  // under, the whole bundle does not) fails the deploy before anything is moved.
  test('a failed write into the kept copy: one error naming it, the vault unchanged, staging empty', async (t) => {
    if (needs(t, isRoot(), 'root') || needs(t, canKeepWhileStaging(), 'native addon with stageFilesKeptAtAsync')) return;
    const tv = await makeVault('kept-efbig');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const tree: TreeSpec = [0, 1, 2].map((i) => ({ type: 'file' as const, path: `part-${i}`, content: randomBytes(40_000) }));
      const b2 = await tv.bundle(2, tree);
      const before = snapshot(tv.path);
      const r = await sentinel(['deploy', b2.path, '--vault', tv.path], { prefix: ['prlimit', `--fsize=${64 * 1024}`] });
      assert.notEqual(r.code, 0);
      assert.equal(r.errLines.length, 1, r.stderr);
      assert.match(r.errLines[0]!, /cannot write the kept bundle copy \(EFBIG\).*\/vault\/staging\/r00000002-[0-9a-f]{12}\.bundle/);
      assert.deepEqual(snapshot(tv.path), before, 'the vault is as it was');
      assert.deepEqual(stagingLeftovers(tv.path), [], 'staging is empty');
      await tv.vault.deploy(b2.path);
      assert.equal((await tv.vault.status()).version, 2, 'the same bundle deploys afterwards');
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
