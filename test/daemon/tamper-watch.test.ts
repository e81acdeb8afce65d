// Tamper watch event filtering, with real inotify watches on a temp tree and a recording guardian.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TamperWatch } from '../../src/daemon/tamper-watch.js';
import type { Sentinel } from '../../src/daemon/sentinel.js';
import { createLogger } from '../../src/adapters/logger.js';

test('tamper watch: an event while the guardian only verifies (nothing of ours writes then) starts a tamper check', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-tw-'));
  const checks: string[] = [];
  let notify: () => void = () => undefined;
  // The guardian's surface the watch uses; its busy label is what the test steers.
  const guardian = {
    busyWith: 'verify (periodic verify)' as string | null,
    counters: { deploys: 0, heals: 0 },
    subscribe: () => undefined,
    checkTamper: (reason: string) => {
      checks.push(reason);
      notify();
      return Promise.resolve({ tampered: false, healed: false, problems: [] });
    },
  };
  const next = (): Promise<void> => new Promise((r) => (notify = r));
  const watch = new TamperWatch(guardian as unknown as Sentinel, createLogger('silent'), { vaultPath: dir, depth: 2, debounceMs: 10, verifyIntervalMs: 3_600_000, flagAuditIntervalMs: 3_600_000, flagTracer: 'off' });
  try {
    await watch.start();
    const first = next();
    await writeFile(join(dir, 'during-verify'), 'x');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([first, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no tamper check for a write during a verify within 15 s; checks: ${JSON.stringify(checks)}`)), 15_000)))]);
    clearTimeout(timer);
    assert.equal(checks.length, 1, JSON.stringify(checks));
    assert.match(checks[0] ?? '', /during-verify/);
  } finally {
    await watch.close();
    await rm(dir, { recursive: true, force: true });
  }
});
