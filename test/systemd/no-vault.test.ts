// The shipped unit started before `sentinel vault init`, under a real systemd (nspawn: fresh /etc and /var):
// a configured vault.path with no vault is a refused configuration, so the unit stops (failed, exit 3, no
// restart) with one journal line naming the path and the command that creates the vault, whether its parent
// /var/lib/omnimind exists or not (the unit's ReadWritePaths= names it); after that command a plain start
// brings it up. A vault that then loses its vault.json is a tampered vault: failed with exit 1, not restarted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { checkoutScenarioArgs, prepareScenarioDirs, unitProps as props } from '../helpers/nspawn-inputs.js';
import { packageRoot } from '../../src/adapters/package-root.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'no-vault');
const BOOT_TIMEOUT_MS = 150_000;
const VAULT = '/var/lib/omnimind/phi-engine';
const INIT = `sentinel vault init ${VAULT} --trust /etc/omnimind-sentinel/keys/release.pub`;

test('the shipped unit with no vault yet: failed with exit 3, not restarted, one line naming the path and vault init; with vault.json removed: exit 1, not restarted', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const scenario = await prepareScenarioDirs('sentinel-no-vault-', fixtures);
  const { dir, out } = scenario;
  try {
    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr'],
      unit: 'sentinel-no-vault-test.target',
      wants: [],
      args: checkoutScenarioArgs(scenario, fixtures, 'sentinel-no-vault-test'),
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);
    await stepOk('install-units');
    for (const phase of ['no-parent', 'no-vault']) {
      const journal = await read(`${phase}.journal`);
      assert.notEqual((await read(`start-${phase}.rc`)).trim(), '0', `${phase}: systemctl start fails`);
      for (const when of [`${phase}.first.show`, `${phase}.show`]) {
        const s = props(await read(when));
        const context = `${phase} (${when}): ${JSON.stringify(s)}\njournal:\n${journal}`;
        assert.equal(s.ActiveState, 'failed', context);
        assert.equal(s.ExecMainStatus, '3', context);
        assert.equal(s.NRestarts, '0', `no restart: ${context}`);
      }
      const refusals = journal.split('\n').filter((l) => l.startsWith('sentinel: '));
      assert.equal(refusals.length, 1, `${phase}: one refusal line:\n${journal}`);
      assert.ok(refusals[0]!.includes(VAULT) && refusals[0]!.includes(INIT), `${phase}: the line names the path and the command:\n${refusals[0]!}`);
    }
    assert.doesNotMatch(await read('audit-log-after-refusal.out'), /audit\.log/, 'the refusal comes before the audit log is opened');
    await stepOk('vault-init');
    await stepOk('start-after-init');
    const up = props(await read('after-init.show'));
    assert.equal(up.ActiveState, 'active', JSON.stringify(up));
    // A vault that lost its vault.json is tampered (exit 1), which the unit does not restart either.
    const gone = await read('vault-json-gone.journal');
    assert.notEqual((await read('start-vault-json-gone.rc')).trim(), '0', 'vault.json gone: systemctl start fails');
    for (const when of ['vault-json-gone.first.show', 'vault-json-gone.show']) {
      const s = props(await read(when));
      const context = `vault.json gone (${when}): ${JSON.stringify(s)}\njournal:\n${gone}`;
      assert.equal(s.ActiveState, 'failed', context);
      assert.equal(s.ExecMainStatus, '1', context);
      assert.equal(s.NRestarts, '0', `no restart: ${context}`);
    }
    const tampered = gone.split('\n').filter((l) => l.startsWith('sentinel: '));
    assert.equal(tampered.length, 1, `vault.json gone: one refusal line:\n${gone}`);
    assert.match(tampered[0]!, /^sentinel: tampered: vault\.json is missing/, tampered[0]);
    assert.ok(tampered[0]!.includes(`${VAULT}/vault.json`), tampered[0]);
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
