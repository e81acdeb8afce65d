// The README's install from a checkout, verbatim, under a real systemd (nspawn: fresh /etc and /var):
// `sentinel` on PATH through a symlink, install-units, keys, config, vault init (missing parents),
// enable --now; then `install-units --uninstall` stops and disables the service first (no dangling
// multi-user.target.wants link, a later install is not "enabled"), and the teardown leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { readmeBlock } from '../helpers/readme.js';
import { packageRoot } from '../../src/adapters/package-root.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures', 'checkout');
const BOOT_TIMEOUT_MS = 150_000;

function props(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('README checkout install and uninstall: service active, then stopped and disabled, nothing left', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-checkout-'));
  try {
    const input = join(dir, 'in');
    const out = join(dir, 'out');
    await mkdir(input, { recursive: true });
    await mkdir(out, { recursive: true });
    execFileSync(process.execPath, [join(root, 'dist', 'src', 'cli', 'main.js'), 'keygen', '--out', join(dir, 'release')]);
    await copyFile(join(dir, 'release.pub'), join(input, 'release.pub'));
    await copyFile(join(fixtures, 'scenario.sh'), join(input, 'scenario.sh'));
    for (const block of ['checkout-install', 'checkout-uninstall', 'teardown']) await writeFile(join(input, `readme-${block}.sh`), readmeBlock(block));

    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr'],
      unit: 'sentinel-checkout-test.target',
      wants: [],
      args: [
        // The volatile root has no /opt: a tmpfs gives the checkout's overlay a parent to mount on.
        '--tmpfs=/opt:mode=0755',
        `--overlay=${root}::/opt/omnimind-sentinel`,
        `--bind-ro=${input}:/in`,
        `--bind=${out}:/out`,
        `--bind-ro=${join(fixtures, 'sentinel-checkout-test.target')}:/etc/systemd/system/sentinel-checkout-test.target`,
        `--bind-ro=${join(fixtures, 'sentinel-checkout-test.service')}:/etc/systemd/system/sentinel-checkout-test.service`,
      ],
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);

    const install = await stepOk('readme-install');
    assert.match(install, /^vault: +\/var\/lib\/omnimind\/phi-engine empty: waiting for the first signed release/m, install);
    const active = props(await read('after-install.show'));
    assert.equal(active.ActiveState, 'active', JSON.stringify(active));
    assert.equal(active.UnitFileState, 'enabled');

    const uninstall = await stepOk('readme-uninstall');
    assert.match(uninstall, /stopped and disabled omnimind-sentinel\.service/);
    const gone = props(await read('after-uninstall.show'));
    assert.equal(gone.ActiveState, 'inactive', JSON.stringify(gone));
    assert.equal(gone.LoadState, 'not-found', 'the unit files are gone');
    assert.doesNotMatch(await read('wants-link.out'), /omnimind-sentinel/, 'no dangling multi-user.target.wants link');
    await stepOk('old-pid-gone');
    await stepOk('reinstall');
    assert.equal((await read('enabled-after-reinstall.out')).trim(), 'disabled', 'a later install is not enabled again');
    await stepOk('uninstall-again');

    const before = new Set((await read('before.list')).split('\n'));
    const after = new Set((await read('after-teardown.list')).split('\n'));
    assert.deepEqual([...after].filter((p) => !before.has(p)), [], 'the README\'s uninstall and teardown leave nothing');
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
