// Invariant 4: every kind of bad bundle that reaches a vault is rejected with an
// integrity code, and the vault is byte-for-byte and flag-for-flag what it was before.
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { SentinelError, exitCodeFor, isSentinelError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { encodeBundleHead } from '../../src/core/bundle.js';
import { encodeSignatures, signManifest } from '../../src/core/signature.js';
import { parseBundleHead } from '../../src/core/bundle.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, corruptCopy, makeVault, snapshot, tempDir, testKey } from '../helpers/vault-factory.js';
import type { TestVault } from '../helpers/vault-factory.js';
import type { CreatedBundle } from '../../src/vault/sign.js';

let tv: TestVault | undefined;
let good: CreatedBundle;
let scratch: string;
const keyB = testKey('vault-b');

before(async () => {
  if (!isRoot()) return;
  tv = await makeVault('reject', { keys: [testKey('vault-a'), keyB], threshold: 1 });
  await tv.vault.deploy((await tv.bundle(1)).path);
  await tv.vault.deploy((await tv.bundle(2)).path);
  good = await tv.bundle(3);
  scratch = tempDir('reject-scratch');
});

after(async () => {
  if (tv !== undefined) await closeDeps(tv.deps);
  cleanupAll();
});

/** Deploys `bundle` and expects a rejection with one of `codes` (or any integrity code), vault unchanged. */
async function expectRejected(bundle: string, codes?: ErrorCode[]): Promise<ErrorCode> {
  const v = tv!;
  const before = snapshot(v.path);
  let code: ErrorCode | undefined;
  try {
    await v.vault.deploy(bundle);
  } catch (e) {
    if (!(e instanceof SentinelError)) throw e;
    code = e.code;
  }
  assert.ok(code !== undefined, `${bundle} was accepted`);
  if (codes !== undefined) assert.ok(codes.includes(code), `expected ${codes.join('|')}, got ${code}`);
  else assert.equal(exitCodeFor(code), 1, `expected an integrity code, got ${code}`);
  assert.deepEqual(snapshot(v.path), before, 'vault changed by a rejected bundle');
  return code;
}

function headOf(path: string) {
  const h = parseBundleHead(readFileSync(path));
  assert.ok(h.ok);
  return h;
}

describe('rejected bundles leave the vault unchanged', () => {
  test('a corrupt byte anywhere: magic, lengths, manifest, signatures, payload', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const size = statSync(good.path).size;
    const h = headOf(good.path);
    const manifestEnd = 12 + h.manifestBytes.length;
    const offsets = new Set<number>([0, 7, 8, 11, 12, 13, manifestEnd - 1, manifestEnd, manifestEnd + 3, manifestEnd + 4, h.payloadOffset - 1, h.payloadOffset, size - 1]);
    for (let i = 0; i < 24; i++) offsets.add(Math.floor((size * i) / 24));
    const seen = new Map<ErrorCode, number>();
    for (const off of [...offsets].sort((a, b) => a - b)) {
      const bad = join(scratch, `corrupt-${off}.bundle`);
      corruptCopy(good.path, bad, off);
      const code = await expectRejected(bad);
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    assert.ok(seen.has('hash-mismatch') && (seen.has('bad-signature') || seen.has('malformed-bundle')), JSON.stringify([...seen]));
  });

  test('truncated at the head, inside the payload, and by one byte', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const size = statSync(good.path).size;
    const h = headOf(good.path);
    for (const len of [0, 5, 20, h.payloadOffset - 1, h.payloadOffset, Math.floor((h.payloadOffset + size) / 2), size - 1]) {
      const bad = join(scratch, `trunc-${len}.bundle`);
      copyFileSync(good.path, bad);
      truncateSync(bad, len);
      await expectRejected(bad, len < 8 ? ['malformed-bundle', 'truncated'] : ['truncated']);
    }
  });

  test('trailing data (a payload with more bytes or files than the manifest)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const bad = join(scratch, 'trailing.bundle');
    copyFileSync(good.path, bad);
    appendFileSync(bad, 'one more file');
    await expectRejected(bad, ['trailing-data']);
  });

  test('payload of another release under this manifest (hash mismatch, same sizes)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const other = await tv!.bundle(3, undefined, {});
    const a = readFileSync(good.path);
    const b = readFileSync(other.path);
    const ha = headOf(good.path);
    const hb = headOf(other.path);
    // Same tree tag, so same sizes; flip the last payload byte of the other to make contents differ.
    const payload = Buffer.from(b.subarray(hb.payloadOffset));
    payload[payload.length - 1] = (payload[payload.length - 1] ?? 0) ^ 0xff;
    const bad = join(scratch, 'swapped-payload.bundle');
    writeFileSync(bad, Buffer.concat([a.subarray(0, ha.payloadOffset), payload]));
    await expectRejected(bad, ['hash-mismatch']);
  });

  test('wrong vault, replayed equal and older versions, expired', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await expectRejected((await tv!.bundle(9, undefined, { vaultId: 'another-vault' })).path, ['wrong-vault']);
    await expectRejected((await tv!.bundle(2)).path, ['rollback']);
    await expectRejected((await tv!.bundle(1)).path, ['rollback']);
    await expectRejected((await tv!.bundle(10, undefined, { created: new Date('2026-01-01T00:00:00Z'), expires: new Date('2026-03-01T00:00:00Z') })).path, ['expired']);
  });

  test('unknown key, threshold not met, the same key counted twice', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await expectRejected((await tv!.bundle(11, undefined, { keys: [testKey('stranger')] })).path, ['untrusted-key']);
    const strict = await makeVault('threshold', { keys: [testKey('vault-a'), keyB], threshold: 2 });
    try {
      const one = await strict.bundle(1, undefined, { keys: [testKey('vault-a')] });
      const snap = snapshot(strict.path);
      await assert.rejects(strict.vault.deploy(one.path), (e) => isSentinelError(e, 'threshold'));
      // Same key twice: re-sign the head with a doubled signature list.
      const h = headOf(one.path);
      const sig = signManifest(h.manifestBytes, testKey('vault-a').secret);
      const doubled = join(scratch, 'doubled.bundle');
      const sigBytes = encodeSignatures([sig, sig]);
      const raw = readFileSync(one.path);
      writeFileSync(doubled, Buffer.concat([encodeBundleHead(h.manifestBytes, sigBytes), raw.subarray(h.payloadOffset)]));
      await assert.rejects(strict.vault.deploy(doubled), (e) => e instanceof SentinelError && exitCodeFor(e.code) === 1);
      assert.deepEqual(snapshot(strict.path), snap);
      const both = await strict.bundle(1, undefined, { keys: [testKey('vault-a'), keyB] });
      assert.equal((await strict.vault.deploy(both.path)).signers.length, 2);
    } finally {
      await closeDeps(strict.deps);
    }
  });

  test('a consumed bundle that is rejected is put back unchanged', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const size = statSync(good.path).size;
    const bad = join(scratch, 'consume-bad.bundle');
    corruptCopy(good.path, bad, size - 2);
    const bytes = readFileSync(bad);
    const before = snapshot(tv!.path);
    await assert.rejects(tv!.vault.deploy(bad, { consume: true }), (e) => isSentinelError(e, 'hash-mismatch'));
    assert.deepEqual(readFileSync(bad), bytes, 'the bundle is back where it was');
    assert.deepEqual(snapshot(tv!.path), before);
  });

  test('without permission to change flags (no CAP_LINUX_IMMUTABLE): not-permitted, vault unchanged', (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const setpriv = spawnSync('setpriv', ['--version']).error === undefined;
    if (needs(t, setpriv, 'setpriv (util-linux)')) return;
    const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');
    const before = snapshot(tv!.path);
    const r = spawnSync('setpriv', ['--bounding-set', '-linux_immutable', '--inh-caps', '-all', process.execPath, child, tv!.path, 'deploy', good.path], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /error:not-permitted/);
    assert.deepEqual(snapshot(tv!.path), before);
  });

  test('a missing bundle file, a directory or a fifo is a usage error and changes nothing', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const before = snapshot(tv!.path);
    await assert.rejects(tv!.vault.deploy(join(scratch, 'nope.bundle')), (e) => isSentinelError(e, 'not-found'));
    await assert.rejects(tv!.vault.deploy(scratch), (e) => isSentinelError(e, 'usage'));
    const fifo = join(scratch, 'fifo.bundle');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    await assert.rejects(tv!.vault.deploy(fifo), (e) => isSentinelError(e, 'usage'));
    assert.deepEqual(snapshot(tv!.path), before);
  });
});
