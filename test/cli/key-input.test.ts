// Key input through the CLI: a small-order or non-canonical public key (docs/FORMAT.md, section 5.5)
// is refused by `vault init --trust`, a vault.json that a root attacker rewrote to trust the identity
// point is refused before a forged bundle is deployed, and a key path naming a fifo, a directory or a
// huge file fails at once with one line instead of hanging.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeBase64, encodeBundleHead, encodeManifest, encodeSignatures, keyIdOf } from '../../src/core/index.js';
import { coreFixture, hexToBytes, makeManifest, testKey } from '../helpers/core-factory.js';
import { cleanupAll, liveTree, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());

const weak = JSON.parse(new TextDecoder().decode(coreFixture('ed25519-weak-points.json'))) as { lowOrderEncodings: { hex: string[] } };
const IDENTITY = '0100000000000000000000000000000000000000000000000000000000000000';

test('vault init --trust refuses every small-order and non-canonical key (usage, exit 2), creating nothing', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('weak-init');
  // One of each kind through the process (the whole list is checked in test/core/weak-points.test.ts):
  // all-zero bytes (order 4), the identity, order 2 with x = -0, order 8, y = p + 3, and y = 2 (no curve point).
  const all = weak.lowOrderEncodings.hex;
  const keys = [all[0]!, all[4]!, all[13]!, all[10]!, 'f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', `02${'00'.repeat(31)}`];
  for (const [i, hex] of keys.entries()) {
    const pub = join(base, `weak-${i}.pub`);
    writeFileSync(pub, `${encodeBase64(hexToBytes(hex))}\n`);
    const vault = join(base, `v${i}`);
    const r = await sentinel(['vault', 'init', vault, '--trust', pub]);
    assertFails(r, 'usage');
    assert.match(r.errLines[0]!, new RegExp(`\\(${pub}\\)$`), 'the line names the key file');
    assert.throws(() => readFileSync(join(vault, 'vault.json')), 'no vault was created');
  }
});

test('a forged bundle (R = identity, S = 0) under an identity key smuggled into vault.json is never deployed', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('weak-forge');
  const good = writeKeyFiles(base, 'good', testKey('weak-forge'));
  const vault = join(base, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', good.pub, '--vault-id', 'forge-test']));
  const src = join(base, 'src');
  writeTree(src, sampleTree('v1'));
  assertOk(await sentinel(['sign-and-deploy', src, '--key', good.key, '--vault', vault]));

  // A root attacker adds the identity point to the vault's own policy and re-seals.
  const identity = hexToBytes(IDENTITY);
  const cfgPath = join(vault, 'vault.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { trust: { keys: { id: string; key: string }[] } };
  cfg.trust.keys.push({ id: keyIdOf(identity), key: encodeBase64(identity) });
  run('chattr', ['-i', vault, cfgPath]);
  writeFileSync(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
  run('chattr', ['+i', cfgPath, vault]);

  // The forgery: any manifest, "signed" by the identity key with R = identity and S = 0.
  const manifest = makeManifest({ vaultId: 'forge-test', version: 2, tree: [{ type: 'file', path: 'evil.py', content: 'import os\n' }] });
  const manifestBytes = encodeManifest(manifest);
  const sig = new Uint8Array(64);
  sig[0] = 1;
  const head = encodeBundleHead(manifestBytes, encodeSignatures([{ keyId: keyIdOf(identity), signature: encodeBase64(sig) }]));
  const forged = join(base, 'forged.bundle');
  writeFileSync(forged, Buffer.concat([head, Buffer.from('import os\n')]));

  const r = await sentinel(['deploy', forged, '--vault', vault]);
  assertFails(r, 'config');
  assert.throws(() => readFileSync(join(liveTree(vault), 'evil.py')), 'the forged file never went live');
  assertFails(await sentinel(['vault', 'verify', vault]), 'config');
});

test('--trust and --key naming a fifo, a directory or a huge file fail at once (usage), never hang', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('key-fifo');
  const fifo = join(base, 'k.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const dir = join(base, 'k.dir');
  mkdirSync(dir);
  const huge = join(base, 'k.huge');
  writeFileSync(huge, '');
  truncateSync(huge, 1 << 30);
  const good = writeKeyFiles(base, 'good', testKey('key-fifo'));
  const src = join(base, 'src');
  writeTree(src, sampleTree('v1'));
  for (const bad of [fifo, dir, huge]) {
    const init = await sentinel(['vault', 'init', join(base, 'v'), '--trust', bad], { timeoutMs: 15_000 });
    assertFails(init, 'usage');
    assert.match(init.errLines[0]!, new RegExp(`\\(${bad}\\)$`));
    const sign = await sentinel(['sign', src, '--key', bad, '--vault-id', 'x', '--version', '1', '--out', join(base, 'b.bundle')], { timeoutMs: 15_000 });
    assertFails(sign, 'usage');
  }
  // The same vault then initialises with a real key file.
  assertOk(await sentinel(['vault', 'init', join(base, 'v'), '--trust', good.pub]));
});
