// STATUS= (the sd_notify status line systemd shows) names the live release by its whole id, as `vault status`
// and the audit log do, so an operator can match it; it was once cut to its first 12 characters.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { needs, isRoot } from '../helpers/env.js';
import { tempDir } from '../helpers/vault-factory.js';
import { cleanupDaemonFiles, startNotifyListener, startTestDaemon } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

test('STATUS= carries the full release id of the live release', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const address = join(tempDir('status-line-notify'), 'notify.sock');
  const listener = await startNotifyListener(address);
  t.after(() => listener.close());
  const d = await startTestDaemon('status-line', {}, { NOTIFY_SOCKET: address });
  try {
    const vault = await d.tv.vault.status();
    const releaseId = vault.releaseId ?? '';
    assert.match(releaseId, /^r\d{8}-[0-9a-f]{12}$/, 'a release id is longer than 12 characters');
    const ready = await listener.next((m) => m.startsWith('READY=1'), 10_000);
    const status = /STATUS=(.*)/.exec(ready)?.[1] ?? '';
    assert.ok(status.includes(`vault v1 ${releaseId} intact`), `STATUS= names ${releaseId}: ${status}`);
  } finally {
    await d.handle.stop('test done');
  }
});
