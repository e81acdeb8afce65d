// The inbox: a bundle renamed into place is deployed and moved to done/; junk and rollbacks go to rejected/ with a
// reason file; `*.tmp` files being written are never picked up.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';

after(() => cleanupDaemonFiles());

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
