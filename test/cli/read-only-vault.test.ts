// The commands that only look (vault status, verify, manifest) on a vault the host cannot write to: a
// read-only mount and a full filesystem (a real tmpfs filled to ENOSPC). They answer, because a full
// disk is when an operator looks; the lock file is left as it was; a deploy there fails with one line
// and changes nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';
import { needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { canMountTmpfs, mountTmpfs, unmountAll, type TestTmpfs } from '../helpers/tmpfs.js';

const usable = canMountTmpfs();
const release = testKey('ro-release');
let fs: TestTmpfs;
let vault = '';
let roMount = '';
let v2 = '';

// The three looking commands, each expected to exit 0 on `target`.
async function looks(target: string): Promise<void> {
  const status = await sentinel(['vault', 'status', target]);
  assertOk(status);
  assert.match(status.stdout, /live: version 1,/);
  assertOk(await sentinel(['vault', 'verify', target]));
  const manifest = await sentinel(['vault', 'manifest', target]);
  assertOk(manifest);
  assert.match(manifest.stdout, / {2}phi\/engine\.py$/m);
}

describe('cli: status, verify and manifest on a read-only or full vault', { concurrency: false }, () => {
  before(async () => {
    if (!usable) return;
    const base = tempDir('ro');
    const keys = writeKeyFiles(base, 'release', release);
    writeTree(join(base, 'src'), sampleTree('v1'));
    fs = mountTmpfs('ro-vault', 4 * 1024 * 1024);
    vault = join(fs.path, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'ro-vault']));
    assertOk(await sentinel(['sign-and-deploy', join(base, 'src'), '--key', keys.key, '--vault', vault, '--version', '1']));
    writeTree(join(base, 'src2'), sampleTree('v2'));
    v2 = join(base, 'v2.bundle');
    assertOk(await sentinel(['sign', join(base, 'src2'), '--key', keys.key, '--vault-id', 'ro-vault', '--version', '2', '--out', v2]));
    roMount = mkdtempSync('/tmp/sentinel-ro-vault-');
    for (const args of [['--bind', vault, roMount], ['-o', 'remount,bind,ro', roMount]]) {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
  });

  after(() => {
    if (roMount !== '') {
      spawnSync('umount', [roMount]);
      rmdirSync(roMount);
    }
    unmountAll();
    cleanupAll();
  });

  it('on a read-only mount: status, verify and manifest answer; a deploy is refused in one line', async (t) => {
    if (needs(t, usable, 'root and tmpfs')) return;
    await looks(roMount);
    const beforeSnap = snapshot(vault);
    assertFails(await sentinel(['deploy', v2, '--vault', roMount]), 'not-permitted');
    assert.deepEqual(snapshot(vault), beforeSnap);
  });

  it('on a full filesystem: status, verify and manifest answer and leave the lock file empty', async (t) => {
    if (needs(t, usable, 'root and tmpfs')) return;
    const lock = join(vault, 'staging', '.lock');
    assert.equal(readFileSync(lock, 'utf8'), '');
    fs.fill();
    try {
      await looks(vault);
      assert.equal(readFileSync(lock, 'utf8'), '', 'no operation is marked as in progress');
      const beforeSnap = snapshot(vault);
      assertFails(await sentinel(['deploy', v2, '--vault', vault]), 'io');
      assert.deepEqual(snapshot(vault), beforeSnap);
    } finally {
      fs.free();
    }
    assertOk(await sentinel(['deploy', v2, '--vault', vault]));
  });
});
