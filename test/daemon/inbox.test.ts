// The inbox: a bundle renamed into place is deployed and moved to done/; junk and rollbacks go to rejected/ with a
// reason file; `*.tmp` files being written are never picked up.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';
import { canMountTmpfs, mountTmpfs, unmountAll } from '../helpers/tmpfs.js';

after(() => {
  unmountAll();
  cleanupDaemonFiles();
});
const tmpfsOk = canMountTmpfs();

test('inbox: deployed → done/, junk and rollback → rejected/ with a reason, .tmp ignored', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('inbox');
  const inbox = join(files.dir, 'inbox');
  const config = { ...files.config, vault: { ...(files.config.vault as object), inbox }, limits: { inboxStableMs: 100 } };
  writeFileSync(files.configPath, JSON.stringify(config));
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    const version = async (): Promise<number> => ((await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { vault: { version: number } } }).result.vault.version;
    const b3 = await files.bundle(3);
    const b2 = await files.bundle(2);

    writeFileSync(join(inbox, 'partial.bundle.tmp'), readFileSync(b3.path).subarray(0, 100));
    copyFileSync(b3.path, join(inbox, 'release-3.tmp'));
    renameSync(join(inbox, 'release-3.tmp'), join(inbox, 'release-3.bundle'));
    await waitFor('release-3 in done/', 15_000, () => (existsSync(join(inbox, 'done', 'release-3.bundle')) ? true : null));
    assert.equal(await version(), 3);

    copyFileSync(b2.path, join(inbox, 'old.tmp'));
    renameSync(join(inbox, 'old.tmp'), join(inbox, 'old.bundle'));
    writeFileSync(join(inbox, '.junk.tmp'), 'not a bundle at all');
    renameSync(join(inbox, '.junk.tmp'), join(inbox, 'junk.bundle'));
    await waitFor('both rejected', 15_000, () => (existsSync(join(inbox, 'rejected', 'old.bundle.reason')) && existsSync(join(inbox, 'rejected', 'junk.bundle.reason')) ? true : null));
    const reason = (name: string): { code: string } => JSON.parse(readFileSync(join(inbox, 'rejected', `${name}.reason`), 'utf8')) as { code: string };
    assert.equal(reason('old.bundle').code, 'rollback');
    assert.equal(reason('junk.bundle').code, 'malformed-bundle');
    assert.equal(await version(), 3, 'rejected bundles changed nothing');
    assert.ok(existsSync(join(inbox, 'partial.bundle.tmp')), 'a .tmp file is left alone');
    assert.deepEqual(readdirSync(inbox).sort(), ['done', 'partial.bundle.tmp', 'rejected']);
  } finally {
    await handle.stop('test');
  }
});

interface InboxStatus {
  result: { vault: { version: number }; inbox: { waiting: number; deferred: number } | null; counters: { inboxDeferred: number } };
}

test('inbox burst with a small deploy queue: busy is back-pressure, not a verdict — every junk file rejected for what it is, the valid one deployed', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('inbox-burst');
  const inbox = join(files.dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(inbox, `junk-${String(i).padStart(2, '0')}.bundle`), `junk ${String(i)}`);
  const b2 = await files.bundle(2);
  copyFileSync(b2.path, join(inbox, 'release-2.bundle'));
  writeFileSync(files.configPath, JSON.stringify({ ...files.config, vault: { ...(files.config.vault as object), inbox }, limits: { inboxStableMs: 0, maxQueuedDeploys: 1 } }));
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    await waitFor('every inbox file taken', 60_000, () => (readdirSync(inbox).filter((n) => n.endsWith('.bundle')).length === 0 ? true : null));
    assert.ok(existsSync(join(inbox, 'done', 'release-2.bundle')), 'the valid bundle was deployed, not refused as busy');
    const reasons = readdirSync(join(inbox, 'rejected')).filter((n) => n.endsWith('.reason'));
    assert.equal(reasons.length, 40);
    for (const r of reasons) assert.equal((JSON.parse(readFileSync(join(inbox, 'rejected', r), 'utf8')) as { code: string }).code, 'malformed-bundle', r);
    const s = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as InboxStatus;
    assert.equal(s.result.vault.version, 2);
  } finally {
    await handle.stop('test');
  }
});

test('inbox on a full disk: the bundle stays in the inbox (io is not a verdict) and is deployed once there is room', { timeout: 120_000 }, async (t) => {
  if (needs(t, tmpfsOk, 'root and a mountable tmpfs')) return;
  const fs = mountTmpfs('inbox-vault', 4 * 1024 * 1024);
  const files = await prepareDaemonFiles('inbox-full', {}, { vaultBase: fs.path });
  const inbox = join(files.dir, 'inbox');
  const big = await files.bundle(2, [{ type: 'file', path: 'blob.bin', content: Buffer.alloc(256 * 1024, 7) }]);
  const b2 = join(files.dir, 'release-2.source');
  copyFileSync(big.path, b2);
  writeFileSync(files.configPath, JSON.stringify({ ...files.config, vault: { ...(files.config.vault as object), inbox }, limits: { inboxStableMs: 0, inboxRetryMs: 200 } }));
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    fs.fill();
    copyFileSync(b2, join(inbox, '.release-2.tmp'));
    renameSync(join(inbox, '.release-2.tmp'), join(inbox, 'release-2.bundle'));
    const s = await waitFor('the deploy deferred for the full disk', 20_000, async () => {
      const now = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as InboxStatus;
      return (now.result.counters.inboxDeferred ?? 0) > 0 ? now : null;
    });
    assert.equal(s.result.vault.version, 1);
    assert.ok(existsSync(join(inbox, 'release-2.bundle')), 'the bundle is still in the inbox');
    assert.deepEqual(readdirSync(join(inbox, 'rejected')), [], 'a full disk is not a verdict on the bundle');
    fs.free();
    await waitFor('deployed once there is room', 30_000, () => (existsSync(join(inbox, 'done', 'release-2.bundle')) ? true : null));
    const after = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as InboxStatus;
    assert.equal(after.result.vault.version, 2);
  } finally {
    await handle.stop('test');
  }
});
