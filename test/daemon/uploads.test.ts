// Inline (base64) deploys are streamed into stateDir/incoming/ and never left there: not after a refusal, not when
// the client goes away mid-upload, not after a full disk (refused `io` naming the directory), not across a restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { createLogger } from '../../src/adapters/logger.js';
import { startDaemon } from '../../src/daemon/main.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../helpers/daemon-harness.js';
import { canMountTmpfs, mountTmpfs, unmountAll } from '../helpers/tmpfs.js';

after(() => {
  unmountAll();
  cleanupDaemonFiles();
});
const tmpfsOk = canMountTmpfs();

interface Reply {
  ok: boolean;
  result?: { version?: number; vault?: { version: number }; counters?: { rejects: number; rejectsByCode: Record<string, number> } };
  error?: { code: string; where?: string };
}

test('base64 deploy on a full state directory: refused io naming the directory, no partial upload left; works once there is room', { timeout: 60_000 }, async (t) => {
  if (needs(t, tmpfsOk, 'root and a mountable tmpfs')) return;
  const fs = mountTmpfs('uploads', 512 * 1024);
  const stateDir = join(fs.path, 'state');
  const files = await prepareDaemonFiles('upfull', { stateDir });
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  const incoming = join(stateDir, 'incoming');
  try {
    const b2 = await files.bundle(2, [{ type: 'file', path: 'blob.bin', content: Buffer.alloc(700 * 1024, 2) }]);
    const inline = { op: 'deploy', bundleBase64: readFileSync(b2.path).toString('base64') };
    const refused = (await sendRequest(files.socket, inline, { timeoutMs: 30_000 })) as Reply;
    assert.equal(refused.ok, false, 'a 700 KiB bundle does not fit in a 512 KiB state directory');
    assert.equal(refused.error?.code, 'io', JSON.stringify(refused));
    assert.equal(refused.error?.where, incoming);
    assert.deepEqual(readdirSync(incoming), [], 'the partial upload is gone');
    const s = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(s.result?.counters?.rejectsByCode.io, 1, 'an io refusal counts in rejects');

    const small = await files.bundle(3);
    fs.fill();
    const full = (await sendRequest(files.socket, { op: 'deploy', bundleBase64: readFileSync(small.path).toString('base64') }, { timeoutMs: 30_000 })) as Reply;
    assert.equal(full.error?.code, 'io', JSON.stringify(full));
    assert.deepEqual(readdirSync(incoming), []);
    fs.free();
    const ok = (await sendRequest(files.socket, { op: 'deploy', bundleBase64: readFileSync(small.path).toString('base64') }, { timeoutMs: 30_000 })) as Reply;
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.result?.version, 3);
    assert.deepEqual(readdirSync(incoming), [], 'a deployed upload is removed too');
  } finally {
    await handle.stop('test');
  }
});

test('uploads: a client gone mid-upload leaves nothing; leftovers of a killed daemon are removed at start', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('upgone');
  const incoming = join(files.dir, 'state', 'incoming');
  mkdirSync(incoming, { recursive: true });
  writeFileSync(join(incoming, 'f00dfeed.bundle'), Buffer.alloc(4096, 1));
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    assert.deepEqual(readdirSync(incoming), [], 'a leftover upload is removed at start');
    const s = connect(files.socket);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`{"op":"deploy","bundleBase64":"${Buffer.alloc(600 * 1024, 9).toString('base64')}`);
    await waitFor('the upload to be under way', 10_000, () => (readdirSync(incoming).length > 0 ? true : null));
    s.destroy();
    await waitFor('the partial upload removed', 10_000, () => (readdirSync(incoming).length === 0 ? true : null));
    const r = (await sendRequest(files.socket, { op: 'deploy', bundleBase64: Buffer.from('not a bundle').toString('base64') }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(r.error?.code, 'malformed-bundle');
    assert.deepEqual(readdirSync(incoming), [], 'a refused upload is removed');
  } finally {
    await handle.stop('test');
  }
});
