// What the watchdog says while the vault is violated and heals keep failing: `status` and STATUS= say unhealthy
// with the reason, while WATCHDOG=1 continues (a restart would not heal the vault; docs/DAEMON.md#systemd-watchdog).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

interface Status {
  counters: { tampers: number; healFailures: number };
  watchdog: { healthy: boolean; pinging: boolean; reason: string | null };
  daemon: { statusLine: string };
}

test('vault VIOLATED and the heal failing: status says unhealthy with the reason, the watchdog keeps pinging', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('wd-violated', { limits: { flagAuditIntervalMs: 60_000 } });
  try {
    const status = async (): Promise<Status> => ((await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 30_000 })) as { result: Status }).result;
    const bundles = join(d.tv.path, 'bundles');
    const stored = join(bundles, readdirSync(bundles).find((n) => n.endsWith('.bundle'))!);
    spawnSync('chattr', ['-i', stored]);
    const bytes = readFileSync(stored);
    bytes[40] = (bytes[40] ?? 0) ^ 0x5a;
    writeFileSync(stored, bytes);
    const engine = join(d.tv.path, 'current', 'tree', 'phi', 'engine.py');
    spawnSync('chattr', ['-i', engine]);
    writeFileSync(engine, 'evil\n');
    const s = await waitFor('the failed heal', 20_000, async () => {
      const now = await status();
      return now.counters.healFailures >= 1 ? now : null;
    });
    assert.equal(s.watchdog.healthy, false, `the watchdog says healthy while the vault is violated: ${JSON.stringify(s.watchdog)}`);
    assert.match(s.watchdog.reason ?? '', /VIOLATED/);
    assert.match(s.watchdog.reason ?? '', /heal failed/);
    assert.equal(s.watchdog.pinging, true, 'liveness pings continue: a restart would not heal the vault');
    assert.match(s.daemon.statusLine, /VIOLATED/);
  } finally {
    await d.handle.stop('test');
  }
});
