// The daemon's periodic verify meets a symlink where the vault keeps state/highest.json, pointing at
// a copy of the same bytes (planted as root would: +i lifted, swapped, state/ sealed again): its
// tamper record names state/highest.json as tampered, never as a flag it could not read, and the
// file is not followed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

const chattr = (...args: string[]): void => {
  const r = spawnSync('chattr', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
};

interface Rec {
  kind: string;
  problems?: { code: string; path: string }[];
}

test('periodic verify: a symlinked state/highest.json is recorded as tampered at state/highest.json', { timeout: 90_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('tamper-symlink', { limits: { verifyIntervalMs: 1_000, flagAuditIntervalMs: 3_600_000 } });
  try {
    const highest = join(d.tv.path, 'state', 'highest.json');
    const state = join(d.tv.path, 'state');
    const copy = join(d.dir, 'highest-copy.json');
    chattr('-i', highest, state);
    copyFileSync(highest, copy);
    unlinkSync(highest);
    symlinkSync(copy, highest);
    chattr('+i', state);
    const tamper = await waitFor('a tamper record', 30_000, () => {
      const recs = readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
      return recs.find((r) => r.kind === 'tamper') ?? null;
    });
    const problems = tamper.problems ?? [];
    assert.deepEqual(problems.filter((p) => p.path === 'state/highest.json'), [{ code: 'tampered', path: 'state/highest.json' }], JSON.stringify(tamper));
  } finally {
    await d.handle.stop('test');
  }
});
