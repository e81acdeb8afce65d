// The shipped unit under a real systemd (nspawn: fresh /etc and /var) when the daemon crashes once it is up, with
// an error of its own class carrying an integrity code (test/fixtures/crash-hook.ts, loaded by a drop-in): the
// process exits 2, which `Restart=on-failure` restarts (RestartPreventExitStatus=1 3 is for the refusals at
// start), so the service is active again under a new PID, and the journal has one line saying it crashed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { checkoutScenarioArgs, prepareScenarioDirs, unitProps as props } from '../helpers/nspawn-inputs.js';
import { packageRoot } from '../../src/adapters/package-root.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'crash-exit');
const BOOT_TIMEOUT_MS = 150_000;

test('the shipped unit after a crash once the daemon is up (an integrity-coded error escaping): exit 2, restarted, active again, one crash line', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const scenario = await prepareScenarioDirs('sentinel-crash-exit-', fixtures);
  const { dir, out } = scenario;
  try {
    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr'],
      unit: 'sentinel-crash-exit-test.target',
      wants: [],
      args: checkoutScenarioArgs(scenario, fixtures, 'sentinel-crash-exit-test'),
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);
    for (const s of ['install-units', 'vault-init', 'start', 'crash']) await stepOk(s);
    const before = props(await read('before.show'));
    assert.equal(before.ActiveState, 'active', JSON.stringify(before));
    const after = props(await read('after.show'));
    const journal = await read('crash.journal');
    const context = `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}\njournal:\n${journal}`;
    assert.match(journal, /Main process exited, code=exited, status=2\//, `the crash is exit 2; ${context}`);
    assert.equal(after.NRestarts, '1', `restarted once by the unit; ${context}`);
    assert.equal(after.ActiveState, 'active', `active again; ${context}`);
    assert.notEqual(after.MainPID, before.MainPID, `a new process; ${context}`);
    const crashes = journal.split('\n').filter((l) => l.includes('"event":"crash"'));
    assert.equal(crashes.length, 1, `one crash line; ${context}`);
    assert.match(crashes[0]!, /"code":"tampered"/, crashes[0]);
    assert.equal(journal.split('\n').filter((l) => l.startsWith('sentinel: ')).length, 0, `no refusal line for a crash; ${context}`);
    // journald stored it at priority crit (2), as `journalctl -p err` shows it.
    const entries = (await read('crash.journal.json')).trim().split('\n').map((l) => JSON.parse(l) as { MESSAGE?: unknown; PRIORITY?: string });
    const crashEntry = entries.find((e) => typeof e.MESSAGE === 'string' && e.MESSAGE.includes('"event":"crash"'));
    assert.equal(crashEntry?.PRIORITY, '2', `the crash line is stored at priority crit; ${JSON.stringify(crashEntry)}`);
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
