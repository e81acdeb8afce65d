// Bad input through the real CLI: every bad bundle, tree, key or environment gives exit 1
// or 2, exactly one stderr line naming the error code, and leaves the vault byte- and flag-identical.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeBundleHead, encodeSignatures, parseBundleHead, parseSignatures, signManifest } from '../../src/core/index.js';
import type { ErrorCode } from '../../src/core/index.js';
import { concat, testKey, utf8 } from '../helpers/core-factory.js';
import { cleanupAll, corruptCopy, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

const root = isRoot();
const release = testKey('cli-release');
const bob = testKey('cli-bob');
const intruder = testKey('cli-intruder');

let base = '';
let vault = '';
let vault2of2 = '';
let keys: Record<'release' | 'bob' | 'intruder', { key: string; pub: string }>;
let goodV2 = '';

/** A signed bundle of sampleTree(tag) for `vaultId`, made by the CLI itself. */
async function signed(name: string, opts: { version: number; keys: string[]; vaultId?: string; vault?: string; tag?: string }): Promise<string> {
  const src = join(base, `src-${name}`);
  if (!existsSync(src)) writeTree(src, sampleTree(opts.tag ?? name));
  const out = join(base, `${name}.bundle`);
  const target = opts.vault !== undefined ? ['--vault', opts.vault] : ['--vault-id', opts.vaultId ?? 'cli-main'];
  assertOk(await sentinel(['sign', src, '--key', ...opts.keys, ...target, '--version', String(opts.version), '--out', out]));
  return out;
}

// Splits a bundle file into head parts and payload.
function parts(file: string): { manifestBytes: Uint8Array; signatureBytes: Uint8Array; payload: Uint8Array; payloadOffset: number } {
  const bytes = new Uint8Array(readFileSync(file));
  const head = parseBundleHead(bytes);
  assert.ok(head.ok, 'test bundle head must parse');
  return { manifestBytes: head.manifestBytes, signatureBytes: head.signatureBytes, payload: bytes.subarray(head.payloadOffset), payloadOffset: head.payloadOffset };
}

function writeBundle(name: string, manifestBytes: Uint8Array, signatureBytes: Uint8Array, payload: Uint8Array): string {
  const out = join(base, `${name}.bundle`);
  writeFileSync(out, concat([encodeBundleHead(manifestBytes, signatureBytes), payload]));
  return out;
}

// A manifest edited by hand and signed again by the trusted key: only the edit can be what is refused.
function resigned(name: string, from: string, edit: (text: string) => string): string {
  const p = parts(from);
  const text = new TextDecoder().decode(p.manifestBytes);
  const edited = utf8(edit(text));
  assert.notEqual(new TextDecoder().decode(edited), text, 'the edit must change the manifest');
  return writeBundle(name, edited, encodeSignatures([signManifest(edited, release.secret)]), p.payload);
}

// Deploys `bundle` into `target` through the CLI and checks the error contract and that nothing changed.
async function rejected(bundle: string, code: ErrorCode | ErrorCode[], target = vault): Promise<string> {
  const beforeSnap = snapshot(target);
  const r = await sentinel(['deploy', bundle, '--vault', target]);
  const got = assertFails(r, code);
  assert.deepEqual(snapshot(target), beforeSnap, 'a rejected bundle must leave the vault unchanged');
  return got;
}

describe('cli: bad input is refused with one line and the vault unchanged', { concurrency: false }, () => {
  before(async () => {
    if (!root) return;
    base = tempDir('cli-bad');
    const kd = join(base, 'keys');
    mkdirSync(kd);
    keys = { release: writeKeyFiles(kd, 'release', release), bob: writeKeyFiles(kd, 'bob', bob), intruder: writeKeyFiles(kd, 'intruder', intruder) };
    vault = join(base, 'vault');
    vault2of2 = join(base, 'vault-2of2');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.release.pub, '--vault-id', 'cli-main']));
    assertOk(await sentinel(['vault', 'init', vault2of2, '--trust', keys.release.pub, keys.bob.pub, '--threshold', '2', '--vault-id', 'cli-two']));
    assertOk(await sentinel(['deploy', await signed('v1', { version: 1, keys: [keys.release.key] }), '--vault', vault]));
    goodV2 = await signed('v2', { version: 2, keys: [keys.release.key], tag: 'v2' });
  });
  after(() => cleanupAll());

  it('corrupted manifest bytes (first, middle, last, the magic, the length field)', async (t) => {
    if (needs(t, root, 'root')) return;
    const p = parts(goodV2);
    const offsets = [12, 12 + Math.floor(p.manifestBytes.length / 2), 12 + p.manifestBytes.length - 2];
    for (const [i, off] of offsets.entries()) {
      const f = join(base, `bad-manifest-${i}.bundle`);
      corruptCopy(goodV2, f, off);
      await rejected(f, 'bad-signature');
    }
    corruptCopy(goodV2, join(base, 'bad-magic.bundle'), 0);
    await rejected(join(base, 'bad-magic.bundle'), 'malformed-bundle');
    corruptCopy(goodV2, join(base, 'bad-length.bundle'), 11);
    await rejected(join(base, 'bad-length.bundle'), ['malformed-bundle', 'truncated', 'too-large']);
  });

  it('corrupted signature bytes', async (t) => {
    if (needs(t, root, 'root')) return;
    const p = parts(goodV2);
    const sigStart = 12 + p.manifestBytes.length + 4;
    const text = new TextDecoder().decode(p.signatureBytes);
    const inSig = text.indexOf('"signature":"') + '"signature":"'.length + 5;
    assert.ok(inSig > 20, 'signature block holds a base64 signature');
    corruptCopy(goodV2, join(base, 'bad-sig-byte.bundle'), sigStart + inSig);
    await rejected(join(base, 'bad-sig-byte.bundle'), ['bad-signature', 'malformed-bundle']);
    const sigText = text.split('');
    sigText[inSig] = sigText[inSig] === 'A' ? 'B' : 'A';
    await rejected(writeBundle('bad-sig-b64', p.manifestBytes, utf8(sigText.join('')), p.payload), 'bad-signature');
  });

  it('corrupted payload byte: hash mismatch', async (t) => {
    if (needs(t, root, 'root')) return;
    const p = parts(goodV2);
    corruptCopy(goodV2, join(base, 'bad-payload.bundle'), p.payloadOffset + 3);
    await rejected(join(base, 'bad-payload.bundle'), 'hash-mismatch');
  });

  it('truncated bundle (in the payload and in the head), and more payload than the manifest lists', async (t) => {
    if (needs(t, root, 'root')) return;
    const p = parts(goodV2);
    const whole = readFileSync(goodV2);
    writeFileSync(join(base, 'short-payload.bundle'), whole.subarray(0, whole.length - 7));
    await rejected(join(base, 'short-payload.bundle'), 'truncated');
    writeFileSync(join(base, 'short-head.bundle'), whole.subarray(0, 12 + Math.floor(p.manifestBytes.length / 2)));
    await rejected(join(base, 'short-head.bundle'), 'truncated');
    writeFileSync(join(base, 'long.bundle'), Buffer.concat([whole, Buffer.from('an extra file\n')]));
    await rejected(join(base, 'long.bundle'), 'trailing-data');
  });

  it('not a bundle at all, and a missing bundle file', async (t) => {
    if (needs(t, root, 'root')) return;
    writeFileSync(join(base, 'random.bundle'), Buffer.from('#!/bin/sh\nrm -rf /\n'));
    await rejected(join(base, 'random.bundle'), 'malformed-bundle');
    await rejected(join(base, 'does-not-exist.bundle'), 'not-found');
  });

  it('oversized manifest (declared length above the limit)', async (t) => {
    if (needs(t, root, 'root')) return;
    const head = Buffer.alloc(16);
    Buffer.from('OMSBNDL1').copy(head, 0);
    head.writeUInt32BE(0xfffffff0, 8);
    writeFileSync(join(base, 'huge.bundle'), head);
    await rejected(join(base, 'huge.bundle'), 'too-large');
  });

  it('signed by an unknown key', async (t) => {
    if (needs(t, root, 'root')) return;
    await rejected(await signed('intruder', { version: 2, keys: [keys.intruder.key] }), 'untrusted-key');
  });

  it('too few signatures for the threshold, and the same key counted twice', async (t) => {
    if (needs(t, root, 'root')) return;
    assertOk(await sentinel(['deploy', await signed('two-v1', { version: 1, keys: [keys.release.key, keys.bob.key], vaultId: 'cli-two' }), '--vault', vault2of2]));
    const one = await signed('two-one', { version: 2, keys: [keys.release.key], vaultId: 'cli-two' });
    await rejected(one, 'threshold', vault2of2);
    const p = parts(one);
    const [sig] = parseSignatures(p.signatureBytes);
    const twice = writeBundle('two-twice', p.manifestBytes, encodeSignatures([sig!, sig!]), p.payload);
    await rejected(twice, 'threshold', vault2of2);
    const r = await sentinel(['sign', join(base, 'src-two-one'), '--key', keys.release.key, keys.release.key, '--vault-id', 'cli-two', '--version', '3', '--out', join(base, 'never.bundle')]);
    assertFails(r, 'usage');
    assert.equal(existsSync(join(base, 'never.bundle')), false);
  });

  it('replayed equal version, and a bundle for another vault', async (t) => {
    if (needs(t, root, 'root')) return;
    await rejected(join(base, 'v1.bundle'), 'rollback');
    await rejected(await signed('other-vault', { version: 5, keys: [keys.release.key], vaultId: 'someone-else' }), 'wrong-vault');
  });

  it('expired bundle', async (t) => {
    if (needs(t, root, 'root')) return;
    const past = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const past2 = new Date(Date.now() - 86_400_000).toISOString();
    const f = resigned('expired', goodV2, (s) => s.replace(/"created":"[^"]+"/, `"created":"${past}"`).replace(/"expires":"[^"]+"/, `"expires":"${past2}"`));
    await rejected(f, 'expired');
  });

  it('crafted manifests: traversal, absolute path, duplicate path, escaping symlink', async (t) => {
    if (needs(t, root, 'root')) return;
    const cases: [string, (s: string) => string][] = [
      ['traversal', (s) => s.replace('"path":"config/phi.json"', '"path":"../phi.json"')],
      ['absolute', (s) => s.replace('"path":"config/phi.json"', '"path":"/etc/phi.json"')],
      ['dotdot-inside', (s) => s.replace('"path":"config/phi.json"', '"path":"config/../../x"')],
      ['duplicate', (s) => s.replace('"path":"config/phi.json"', '"path":"VERSION"')],
      ['escaping-symlink', (s) => s.replace('"target":"phi/engine.py"', '"target":"../../../etc/passwd"')],
      ['absolute-symlink', (s) => s.replace('"target":"phi/engine.py"', '"target":"/etc/passwd"')],
    ];
    for (const [name, edit] of cases) {
      await rejected(resigned(name, goodV2, edit), 'bad-path');
    }
    assert.ok(readFileSync(goodV2).includes('"type":"symlink"'), 'the sample tree carries a symlink to edit');
  });

  it('setuid and setgid files in a crafted manifest', async (t) => {
    if (needs(t, root, 'root')) return;
    await rejected(resigned('setuid', goodV2, (s) => s.replace('"mode":420', `"mode":${0o4755}`)), 'bad-path');
    await rejected(resigned('setgid', goodV2, (s) => s.replace('"mode":420', `"mode":${0o2755}`)), 'bad-path');
  });

  it('source trees the signer must refuse: fifo, device, setuid, escaping and absolute symlinks, unreadable file', async (t) => {
    if (needs(t, root, 'root')) return;
    const mk = (name: string, add: (dir: string) => void): string => {
      const dir = join(base, `tree-${name}`);
      writeTree(dir, sampleTree(name));
      add(dir);
      return dir;
    };
    const trees: [string, string, ErrorCode][] = [
      ['fifo', mk('fifo', (d) => spawnSync('mkfifo', [join(d, 'pipe')])), 'bad-path'],
      ['device', mk('device', (d) => spawnSync('mknod', [join(d, 'null'), 'c', '1', '3'])), 'bad-path'],
      ['setuid', mk('setuid', (d) => chmodSync(join(d, 'VERSION'), 0o4755)), 'bad-path'],
      ['escaping-symlink', mk('escape', (d) => symlinkSync('../../../etc/passwd', join(d, 'config', 'passwd'))), 'bad-path'],
      ['absolute-symlink', mk('abs', (d) => symlinkSync('/etc/passwd', join(d, 'passwd'))), 'bad-path'],
    ];
    for (const [name, dir, code] of trees) {
      const out = join(base, `refused-${name}.bundle`);
      assertFails(await sentinel(['sign', dir, '--key', keys.release.key, '--vault-id', 'cli-main', '--version', '9', '--out', out]), code);
      assert.equal(existsSync(out), false, `${name}: no bundle may be left behind`);
    }
    const unreadable = mk('unreadable', (d) => chmodSync(join(d, 'phi', 'engine.py'), 0o000));
    const out = join(base, 'refused-unreadable.bundle');
    const r = await sentinel(['sign', unreadable, '--key', keys.release.key, '--vault-id', 'cli-main', '--version', '9', '--out', out], { prefix: ['setpriv', '--bounding-set=-dac_override,-dac_read_search'] });
    assertFails(r, ['io', 'not-permitted']);
    assert.equal(existsSync(out), false, 'no bundle from an unreadable tree');
  });

  it('a vault on a filesystem without +i support (ramfs)', async (t) => {
    if (needs(t, root, 'root')) return;
    const mnt = join(base, 'ramfs');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'ramfs', 'none', mnt]);
    if (needs(t, m.status === 0, 'mount -t ramfs')) return;
    try {
      assertFails(await sentinel(['vault', 'init', join(mnt, 'vault'), '--trust', keys.release.pub]), 'no-immutable-support');
      assert.equal(existsSync(join(mnt, 'vault')), false, 'a refused init leaves nothing behind');
      const d = await sentinel(['doctor', '--vault-dir', mnt, '--json']);
      assertFails(d, 'unavailable');
      const report = JSON.parse(d.stdout) as { ok: boolean; vaultReady: boolean; checks: { name: string; status: string }[]; error: { code: string } };
      assert.deepEqual([report.ok, report.vaultReady, report.error.code], [false, false, 'unavailable']);
      assert.equal(report.checks.find((c) => c.name === 'vault filesystem supports +i')?.status, 'missing');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it('no permission to change flags (no CAP_LINUX_IMMUTABLE): deploy and init refused, vault unchanged', async (t) => {
    if (needs(t, root, 'root')) return;
    const noCap = ['setpriv', '--inh-caps=-all', '--bounding-set=-linux_immutable'];
    const beforeSnap = snapshot(vault);
    assertFails(await sentinel(['deploy', goodV2, '--vault', vault], { prefix: noCap }), 'not-permitted');
    assert.deepEqual(snapshot(vault), beforeSnap, 'vault unchanged without the capability');
    assertFails(await sentinel(['vault', 'init', join(base, 'vault-nocap'), '--trust', keys.release.pub], { prefix: noCap }), 'not-permitted');
    assert.equal(existsSync(join(base, 'vault-nocap')), false);
  });

  it('replayed older version after an upgrade', async (t) => {
    if (needs(t, root, 'root')) return;
    assertOk(await sentinel(['deploy', goodV2, '--vault', vault]));
    await rejected(join(base, 'v1.bundle'), 'rollback');
    await rejected(goodV2, 'rollback');
  });

  it('a truncated bundle file on disk after the fact (file shrunk in place)', async (t) => {
    if (needs(t, root, 'root')) return;
    const f = await signed('v3-short', { version: 3, keys: [keys.release.key], tag: 'v3' });
    truncateSync(f, 40);
    await rejected(f, 'truncated');
  });
});
