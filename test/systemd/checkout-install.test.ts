// The README's install from a checkout, verbatim, under a real systemd (nspawn: fresh /etc and /var):
// `sentinel` on PATH through a symlink, install-units, keys, config, vault init (missing parents),
// enable --now; then `install-units --uninstall` stops and disables the service first (no dangling
// multi-user.target.wants link, a later install is not "enabled"), stops omnimind.slice and resets failed
// units (nothing of ours stays loaded) but leaves the slice to a unit of the operator's own in it, and the
// teardown leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { checkoutScenarioArgs, prepareScenarioDirs, unitProps as props } from '../helpers/nspawn-inputs.js';
import { readmeBlock } from '../helpers/readme.js';
import { packageRoot } from '../../src/adapters/package-root.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'checkout');
const BOOT_TIMEOUT_MS = 210_000;

test('README checkout install and uninstall: service active, then stopped and disabled, nothing left', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const scenario = await prepareScenarioDirs('sentinel-checkout-', fixtures);
  const { dir, input, out } = scenario;
  try {
    for (const block of ['checkout-install', 'sample-backend', 'checkout-uninstall', 'teardown']) await writeFile(join(input, `readme-${block}.sh`), readmeBlock(block));
    await copyFile(join(dir, 'release.key'), join(input, 'release.key'));

    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr'],
      unit: 'sentinel-checkout-test.target',
      wants: [],
      args: checkoutScenarioArgs(scenario, fixtures, 'sentinel-checkout-test'),
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);

    const install = await stepOk('readme-install');
    assert.match(install, /^vault: +\/var\/lib\/omnimind\/phi-engine empty: waiting for the first signed release/m, install);
    const active = props(await read('after-install.show'));
    assert.equal(active.ActiveState, 'active', JSON.stringify(active));
    assert.equal(active.UnitFileState, 'enabled');
    // The README's way to try the sample backend works as printed: the backend answers on port 8000.
    await stepOk('readme-sample-backend');
    await stepOk('sample-health');

    const uninstall = await stepOk('readme-uninstall');
    assert.match(uninstall, /stopped and disabled omnimind-sentinel\.service/);
    const gone = props(await read('after-uninstall.show'));
    assert.equal(gone.ActiveState, 'inactive', JSON.stringify(gone));
    assert.equal(gone.LoadState, 'not-found', 'the unit files are gone');
    assert.doesNotMatch(await read('wants-link.out'), /omnimind-sentinel/, 'no dangling multi-user.target.wants link');
    assert.equal((await read('units-left.out')).trim(), '', 'no unit of ours still loaded (the slice stopped, failed units reset), no slice cgroup');
    assert.match(uninstall, /stopped omnimind\.slice/);
    await stepOk('old-pid-gone');
    await stepOk('reinstall');
    assert.equal((await read('enabled-after-reinstall.out')).trim(), 'disabled', 'a later install is not enabled again');
    await stepOk('operator-unit');
    await stepOk('start-fails');
    const again = await stepOk('uninstall-again');
    assert.equal((await read('services-left.out')).trim(), '', 'the failed sentinel is not left listed as "not-found failed"');
    assert.match(again, /omnimind\.slice left running: it still holds operator-own\.service/, again);
    assert.equal((await stepOk('operator-unit-after')).trim(), 'active\nactive', 'the operator\'s own unit and its slice keep running');

    const before = new Set((await read('before.list')).split('\n'));
    const after = new Set((await read('after-teardown.list')).split('\n'));
    assert.deepEqual([...after].filter((p) => !before.has(p)), [], 'the README\'s uninstall and teardown leave nothing');
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
