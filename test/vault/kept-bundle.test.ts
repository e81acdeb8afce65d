// The bundle kept for heal is the one that was verified (docs/VAULT.md#deploy): a bundle rewritten in
// place during a deploy (through a descriptor its writer still holds, or a copy that read the new
// bytes) is refused before the commit point instead of leaving a kept bundle a later heal rejects.
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault, snapshot, stagingLeftovers } from '../helpers/vault-factory.js';
import { openVault } from '../../src/vault/index.js';
import { isSentinelError } from '../../src/core/errors.js';

after(() => cleanupAll());

/** Overwrites the last bytes of `fd`'s file (inside the payload) with something else. */
function scribble(fd: number, size: number): void {
  writeSync(fd, Buffer.from('#rewritten#'), 0, 11, size - 11);
}

describe('a bundle rewritten during deploy', () => {
  for (const consume of [false, true]) {
    test(`${consume ? 'moved in (consume), rewritten through its writer\'s descriptor' : 'copied, the copy holding rewritten bytes'}: refused, vault unchanged, heal still works`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const tv = await makeVault(`kept-${consume ? 'c' : 'k'}`);
      try {
        await tv.vault.deploy((await tv.bundle(1)).path);
        const b2 = await tv.bundle(2);
        const size = statSync(b2.path).size;
        // The writer of an inbox file may still hold it open; the copy's file is root's own.
        const writerFd = consume ? openSync(b2.path, 'r+') : -1;
        const before = snapshot(tv.path);
        const v = await openVault(tv.path, {
          ...tv.deps,
          hook: (s) => {
            if (s !== 'staged') return Promise.resolve();
            if (consume) scribble(writerFd, size);
            else {
              const kept = readdirSync(join(tv.path, 'staging')).find((n) => n.endsWith('.bundle'));
              assert.ok(kept !== undefined, 'the bundle is being kept in staging/');
              const fd = openSync(join(tv.path, 'staging', kept), 'r+');
              try {
                scribble(fd, size);
              } finally {
                closeSync(fd);
              }
            }
            return Promise.resolve();
          },
        });
        try {
          await assert.rejects(v.deploy(b2.path, { consume }), (e) => isSentinelError(e, 'hash-mismatch'));
        } finally {
          if (writerFd >= 0) closeSync(writerFd);
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
  }
});
