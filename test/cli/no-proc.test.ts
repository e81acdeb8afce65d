// Without /proc mounted (a chroot, a rescue shell, a minimal container) the vault's files are still
// read: `vault verify` (both scopes, both entries) answers an intact vault intact, and a symlink
// planted at a release's manifest.json is still refused as tampered, never followed. (The reads go
// through the release directory's descriptor where /proc/self/fd exists.) A symlink in the tree is not
// covered here: the tree pass reads a symlink's extended attributes through /proc/self/fd, so without
// /proc it is named `io` (cannot list the extended attributes), an environment error, never intact or
// tampered (docs/SECURITY.md#without-proc).
import assert from 'node:assert/strict';
import { copyFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { assertOk, BIN, CLI, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const owner = testKey('no-proc');
// A mount namespace of its own with /proc unmounted, then exec of `node ENTRY args...`.
const NO_PROC = ['unshare', '-m', 'sh', '-c', 'umount -l /proc && exec "$0" "$@"'];

test('without /proc: vault verify answers an intact vault intact (both scopes, both entries) and refuses a symlinked manifest', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i, unshare -m)')) return;
  const dir = tempDir('no-proc');
  const keys = writeKeyFiles(dir, 'release', owner);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'no-proc']));
  for (const v of [1, 2]) {
    writeTree(join(dir, `src-${v}`), sampleTree(`v${v}`).filter((e) => e.type !== 'symlink'));
    assertOk(await sentinel(['sign-and-deploy', join(dir, `src-${v}`), '--key', keys.key, '--vault', vault, '--version', String(v)]));
  }
  for (const entry of [BIN, CLI]) {
    for (const scope of [[], ['--live-only']]) {
      const r = await sentinel(['vault', 'verify', vault, '--trust', keys.pub, ...scope], { prefix: NO_PROC, entry });
      assert.equal(r.code, 0, `${basename(entry)} verify ${scope.join(' ')} without /proc: ${r.stdout}${r.stderr}`);
    }
  }
  // The live manifest swapped for a symlink to a copy of the same bytes.
  const live = join(vault, 'releases', basename(readlinkSync(join(vault, 'current'))));
  const manifest = join(live, 'manifest.json');
  const copy = join(dir, 'manifest-copy.json');
  copyFileSync(manifest, copy);
  run('chattr', ['-i', live, manifest]);
  unlinkSync(manifest);
  symlinkSync(copy, manifest);
  run('chattr', ['+i', live]);
  for (const entry of [BIN, CLI]) {
    const r = await sentinel(['vault', 'verify', vault, '--trust', keys.pub, '--live-only'], { prefix: NO_PROC, entry });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /manifest\.json is a symlink/);
  }
});
