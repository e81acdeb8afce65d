// Bundle creation (`sentinel sign`): the bundle holds the exact tree (entries, modes, sizes,
// SHA-256, payload bytes in manifest order), verifies against the signer's key, is deterministic
// for the same input in both call forms, and a source with a fifo or a setuid file is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isSentinelError } from '../../src/core/errors.js';
import { parseBundleHead } from '../../src/core/bundle.js';
import { payloadLayout } from '../../src/core/manifest.js';
import { parseSignatures } from '../../src/core/signature.js';
import { verifySignedManifest } from '../../src/core/trust.js';
import { createBundle } from '../../src/vault/sign.js';
import { cleanupAll, sampleTree, tempDir, testKey, writeTree, T0, ONE_YEAR_LATER } from '../helpers/vault-factory.js';

after(cleanupAll);

const key = testKey('signer');

test('a bundle holds exactly the tree, signed, in manifest order', async () => {
  const dir = tempDir('sign');
  const src = join(dir, 'src');
  writeTree(src, sampleTree('s1'));
  const out = join(dir, 'a.bundle');
  const r = await createBundle(src, { keys: [key.secret], vaultId: 'sign-test', version: 7, created: T0, expires: ONE_YEAR_LATER, out });
  const bytes = readFileSync(out);
  assert.equal(r.bundleBytes, bytes.length);
  const head = parseBundleHead(bytes);
  assert.ok(head.ok);
  const v = verifySignedManifest(head.manifestBytes, parseSignatures(head.signatureBytes), { keys: [key.public], threshold: 1 });
  assert.equal(v.releaseId, r.releaseId);
  assert.equal(v.manifest.version, 7);
  assert.deepEqual(v.signers, [key.public.id]);
  const layout = payloadLayout(v.manifest);
  assert.equal(bytes.length, head.payloadOffset + layout.totalBytes);
  for (const f of layout.files) {
    const content = readFileSync(join(src, f.entry.path));
    assert.equal(f.entry.size, content.length);
    assert.equal(f.entry.sha256, createHash('sha256').update(content).digest('hex'));
    assert.equal(f.entry.mode, statSync(join(src, f.entry.path)).mode & 0o777);
    assert.deepEqual(bytes.subarray(head.payloadOffset + f.offset, head.payloadOffset + f.offset + f.entry.size), content);
  }
  const paths = v.manifest.entries.map((e) => `${e.type}:${e.path}`).sort();
  assert.deepEqual(paths, sampleTree('s1').map((e) => `${e.type}:${e.path}`).sort());

  const out2 = join(dir, 'b.bundle');
  await createBundle({ sourceDir: src, keys: [key.secret], vaultId: 'sign-test', version: 7, created: T0, expires: ONE_YEAR_LATER, outPath: out2 });
  assert.deepEqual(readFileSync(out2), bytes, 'same input, same bytes, whichever call form');
});

test('a source tree with a fifo or a setuid file is refused, and no bundle is left', async () => {
  const dir = tempDir('sign-bad');
  const fifoSrc = join(dir, 'fifo');
  writeTree(fifoSrc, sampleTree('f'));
  const mk = spawnSync('mkfifo', [join(fifoSrc, 'pipe')]);
  assert.equal(mk.status, 0);
  const out = join(dir, 'fifo.bundle');
  await assert.rejects(createBundle(fifoSrc, { keys: [key.secret], vaultId: 'x', version: 1, created: T0, expires: ONE_YEAR_LATER, out }), (e) => isSentinelError(e, 'bad-path'));
  assert.equal(existsSync(out), false);

  const suidSrc = join(dir, 'suid');
  writeTree(suidSrc, sampleTree('s'));
  writeFileSync(join(suidSrc, 'tool'), '#!/bin/sh\n');
  chmodSync(join(suidSrc, 'tool'), 0o4755);
  const out2 = join(dir, 'suid.bundle');
  await assert.rejects(createBundle(suidSrc, { keys: [key.secret], vaultId: 'x', version: 1, created: T0, expires: ONE_YEAR_LATER, out: out2 }), (e) => isSentinelError(e, 'bad-path'));
  assert.equal(existsSync(out2), false);

  await assert.rejects(createBundle(suidSrc, { keys: [], vaultId: 'x', version: 1, created: T0, expires: ONE_YEAR_LATER, out: out2 }), (e) => isSentinelError(e, 'usage'));
});
