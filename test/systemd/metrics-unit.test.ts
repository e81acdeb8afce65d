// Metrics the way they ship: under a real systemd (nspawn, a throw-away copy of this host), the checkout is
// installed as the README says, then the README's metrics block runs verbatim: `metrics.listen` on
// 127.0.0.1:9464 behind the shipped unit's RestrictAddressFamilies= and IPAddressDeny=/IPAddressAllow=, and
// Debian's own prometheus.service scrapes it with the shipped alert rules loaded. Under CI a missing
// prometheus fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { checkoutScenarioArgs, prepareScenarioDirs, unitProps as props } from '../helpers/nspawn-inputs.js';
import { needs } from '../helpers/env.js';
import { readmeBlock } from '../helpers/readme.js';
import { packageRoot } from '../../src/adapters/package-root.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'metrics');
const BOOT_TIMEOUT_MS = 170_000;

test('the shipped unit serves metrics on 127.0.0.1:9464 and Debian\'s prometheus.service scrapes them (README block verbatim)', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const hasProm = spawnSync('prometheus', ['--version']).status === 0;
  if (!hasProm && process.env.CI === 'true') throw new Error('required for CI but missing on this host: prometheus (scripts/setup-host.sh installs it)');
  if (needs(t, hasProm, 'prometheus (Debian package)')) return;
  const scenario = await prepareScenarioDirs('sentinel-metrics-unit-', fixtures);
  const { dir, input, out } = scenario;
  try {
    for (const block of ['checkout-install', 'metrics']) await writeFile(join(input, `readme-${block}.sh`), readmeBlock(block));

    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr', '/etc', '/var'],
      unit: 'sentinel-metrics-test.target',
      wants: [],
      args: checkoutScenarioArgs(scenario, fixtures, 'sentinel-metrics-test'),
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);
    await stepOk('install');
    const block = await stepOk('readme-metrics');
    assert.match(block, /^sentinel_vault_intact\{vault="\/var\/lib\/omnimind\/phi-engine"\} 1$/m, `the README's curl shows the metric:\n${block}`);
    assert.match(block, /"__name__":"sentinel_vault_intact".*"job":"omnimind-sentinel".*"value":\[[0-9.]+,"1"\]/, `the README's PromQL query returns intact 1:\n${block}`);
    const unit = props(await stepOk('unit-props'));
    assert.equal(unit.ActiveState, 'active', JSON.stringify(unit));
    assert.match(unit.RestrictAddressFamilies ?? '', /AF_INET\b/, 'the unit lets the daemon open a TCP socket');
    assert.notEqual(unit.PrivateNetwork, 'yes');
    assert.match(await stepOk('listening'), /127\.0\.0\.1:9464 .*node/, 'bound to the configured address only');
    const intact = JSON.parse(await read('query-intact.out')) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    assert.equal(intact.data.result.length, 1, JSON.stringify(intact));
    assert.equal(intact.data.result[0]!.metric.job, 'omnimind-sentinel');
    assert.equal(intact.data.result[0]!.value[1], '1', 'PromQL: the vault is intact');
    const up = JSON.parse(await stepOk('query-up')) as { data: { result: { value: [number, string] }[] } };
    assert.equal(up.data.result[0]?.value[1], '1', 'the scrape target is up');
    const rules = JSON.parse(await stepOk('query-rules')) as { data: { groups: { name: string }[] } };
    assert.ok(rules.data.groups.some((g) => g.name === 'omnimind-sentinel'), 'the shipped alert rules are loaded');
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
