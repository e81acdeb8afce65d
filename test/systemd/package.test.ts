// The Debian package the way an operator meets it: `scripts/package-deb.sh` builds it (and a rebuilt
// one), then inside a copy of this host under a real systemd (nspawn; /usr, /etc and /var are throw-away
// overlays, no network) the README's commands run verbatim: apt-get installs it offline and the service
// starts; an upgrade keeps it running, remove stops and disables it and every unit `install-units` wrote
// (their files kept until purge), purge leaves only the vault and the audit log, and the README's
// teardown leaves nothing at all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootContainer, needsNspawn, scenarioSteps } from '../helpers/nspawn.js';
import { SCENARIO_STEP, SCENARIO_STEP_GUEST, hostCli as cli, unitProps as props } from '../helpers/nspawn-inputs.js';
import { needs } from '../helpers/env.js';
import { readmeBlock } from '../helpers/readme.js';
import { packageRoot, packageVersion } from '../../src/adapters/package-root.js';

const root = packageRoot();
const fixtures = join(root, 'test', 'fixtures', 'package');
const BOOT_TIMEOUT_MS = 170_000;

test('Debian package: apt-get install offline, enable --now, upgrade with the service running, remove, purge', { timeout: BOOT_TIMEOUT_MS + 60_000 }, async (t) => {
  if (needsNspawn(t)) return;
  if (needs(t, spawnSync('dpkg-deb', ['--version']).status === 0, 'dpkg-deb')) return;
  // The container's /var starts as a copy of this host's: what an earlier install or daemon run left
  // here would be counted as there before the package, and purge and teardown could not be judged.
  const leftovers = ['/var/lib/omnimind', '/var/lib/omnimind-sentinel', '/var/log/omnimind-sentinel', '/etc/omnimind-sentinel'].filter((p) => existsSync(p));
  assert.deepEqual(leftovers, [], 'this host holds files of an earlier install or daemon run; the package test needs them gone (chattr -R -i / -a, then remove)');
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-package-'));
  try {
    const pkg = join(dir, 'pkg');
    const out = join(dir, 'out');
    await mkdir(pkg, { recursive: true });
    await mkdir(out, { recursive: true });
    // --no-build: the suite runs on a built tree, and a rebuild here would rewrite dist/ under the tests
    // running beside this one (they failed on half-written modules); the build step is `npm run build`.
    for (const revision of ['1', '2']) {
      const r = spawnSync('bash', [join(root, 'scripts', 'package-deb.sh'), '--out', join(pkg, `v${revision}`), '--revision', revision, '--no-build'], { encoding: 'utf8', cwd: dir });
      assert.equal(r.status, 0, `package-deb.sh: ${r.stderr}`);
      assert.match(r.stdout.trim(), new RegExp(`/omnimind-sentinel_${packageVersion().replace(/\./g, '\\.')}-${revision}_[a-z0-9]+\\.deb$`));
    }
    const debs = (await readdir(join(pkg, 'v1'))).filter((f) => f.endsWith('.deb'));
    assert.equal(debs.length, 1, debs.join(' '));
    const deb = join(pkg, 'v1', debs[0]!);
    const control = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' });
    assert.match(control, /^Depends: nodejs \(>= 20[^)]*\), e2fsprogs/m);
    const files = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const f of ['./usr/bin/sentinel -> ../lib/omnimind-sentinel/dist/src/cli/sentinel.cjs', './lib/systemd/system/omnimind-sentinel.service', './usr/lib/omnimind-sentinel/node_modules/pino/', './usr/share/man/man1/sentinel.1.gz', './usr/lib/omnimind-sentinel/native/build/Release/sentinel_native.node', './usr/lib/omnimind-sentinel/node_modules/prom-client/', './usr/share/doc/omnimind-sentinel/examples/prometheus-alerts.yml', './usr/share/doc/omnimind-sentinel/examples/grafana-dashboard.json', './usr/lib/omnimind-sentinel/integrations/python/omnimind_sentinel/serve.py']) {
      assert.ok(files.includes(f), `package holds ${f}`);
    }
    assert.doesNotMatch(files, /node_modules\/(typescript|eslint|fast-check)\//, 'no dev dependencies');
    assert.doesNotMatch(files, /\.\/usr\/lib\/omnimind-sentinel\/dist\/(test|bench)\//, 'no tests or benchmarks');

    // The operator's public key next to the package (the README's assumption); the secret key only for this test's signing.
    cli(['keygen', '--out', join(dir, 'release')]);
    await copyFile(join(dir, 'release.pub'), join(pkg, 'v1', 'release.pub'));
    await copyFile(join(dir, 'release.key'), join(pkg, 'release.key'));
    for (const block of ['package-install', 'package-uninstall', 'teardown', 'metrics']) await writeFile(join(pkg, `readme-${block}.sh`), readmeBlock(block));

    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      overlays: ['/usr', '/etc', '/var'],
      unit: 'sentinel-package-test.target',
      wants: [],
      args: [
        `--bind-ro=${pkg}:/pkg`,
        `--bind=${out}:/out`,
        `--bind-ro=${SCENARIO_STEP}:${SCENARIO_STEP_GUEST}`,
        `--bind-ro=${fixtures}:/etc/sentinel-package-test`,
        `--bind-ro=${join(fixtures, 'sentinel-package-test.target')}:/etc/systemd/system/sentinel-package-test.target`,
        `--bind-ro=${join(fixtures, 'sentinel-package-test.service')}:/etc/systemd/system/sentinel-package-test.service`,
      ],
    });
    const { read, stepOk } = await scenarioSteps(boot, out, BOOT_TIMEOUT_MS);

    await stepOk('readme-install');
    const installed = props(await read('after-install.show'));
    assert.equal(installed.ActiveState, 'active', JSON.stringify(installed));
    assert.equal(installed.UnitFileState, 'enabled');
    assert.match(installed.StatusText ?? '', /waiting for the first signed release/, 'an empty vault at start waits, never "violated"');
    const startLog = await stepOk('journal-start');
    assert.match(startLog, /"event":"verify"/, startLog);
    assert.doesNotMatch(startLog, /violated/, 'a fresh empty vault is not reported violated at start');
    const which = await stepOk('which');
    assert.match(which, /^\/usr\/bin\/sentinel$/m);
    assert.ok(which.includes(packageVersion()), which);
    assert.match(which, /\/usr\/share\/man\/man1\/sentinel\.1\.gz/);
    const modes = await stepOk('modes');
    for (const line of ['755 root /etc/omnimind-sentinel', '755 root /etc/omnimind-sentinel/keys', '644 root /etc/omnimind-sentinel/sentinel.json', '755 root /var/lib/omnimind', '700 root /var/lib/omnimind-sentinel', '700 root /var/log/omnimind-sentinel', '644 root /lib/systemd/system/omnimind-sentinel.service']) {
      assert.ok(modes.includes(`${line}\n`), `${line} in:\n${modes}`);
    }
    assert.match(await stepOk('conffiles'), /\/etc\/omnimind-sentinel\/sentinel\.json [0-9a-f]{32}/);
    await stepOk('sign');
    await stepOk('deploy');
    const status = await stepOk('status');
    assert.match(status, /^vault: +\/var\/lib\/omnimind\/phi-engine v1 /m, status);

    // From the package to metrics scraped by Prometheus, with the README's block as printed.
    const metrics = await stepOk('readme-metrics');
    assert.match(metrics, /^sentinel_vault_intact\{vault="\/var\/lib\/omnimind\/phi-engine"\} 1$/m, `the README's curl shows the metric:\n${metrics}`);
    const intact = JSON.parse(await read('query-intact.out')) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    assert.equal(intact.data.result[0]?.metric.job, 'omnimind-sentinel', JSON.stringify(intact));
    assert.equal(intact.data.result[0]?.value[1], '1', 'PromQL: the vault is intact');
    const rules = JSON.parse(await stepOk('query-rules')) as { data: { groups: { name: string }[] } };
    assert.ok(rules.data.groups.some((g) => g.name === 'omnimind-sentinel'), 'the package\'s alert rules are loaded');

    // Reload and start under the shipped unit.
    const badReload = await read('reload-bad.out');
    assert.notEqual((await read('reload-bad.rc')).trim(), '0', `systemctl reload of a broken file must fail:\n${badReload}`);
    const afterBad = props(await read('after-bad-reload.show'));
    assert.equal(afterBad.ActiveState, 'active', JSON.stringify(afterBad));
    assert.match(afterBad.StatusText ?? '', /reload rejected, running the previous configuration: config: /, 'STATUS= says why');
    assert.match(afterBad.StatusText ?? '', /vault v1 /, 'still guarding the vault');
    assert.match(await read('journal-err.out'), /new configuration rejected/, 'the rejection is in the journal at priority err');
    await stepOk('reload-good');
    const reloaded = props(await read('after-good-reload.show'));
    assert.equal(reloaded.MainPID, afterBad.MainPID, 'a reload is not a restart');
    assert.doesNotMatch(reloaded.StatusText ?? '', /reload rejected/);
    assert.notEqual((await read('restart-bad.rc')).trim(), '0', 'a broken configuration fails the start');
    const failed = props(await read('after-bad-start.show'));
    assert.equal(failed.ActiveState, 'failed', JSON.stringify(failed));
    assert.equal(failed.ExecMainStatus, '3', JSON.stringify(failed));
    assert.equal(failed.NRestarts, '0', `no restart loop on a configuration error: ${JSON.stringify(failed)}`);
    await stepOk('start-good');
    assert.match(await stepOk('status-after-start'), /^vault: +\/var\/lib\/omnimind\/phi-engine v1 /m);

    const before = props(await read('before-upgrade.show'));
    const after = props(await read('after-upgrade.show'));
    await stepOk('upgrade');
    assert.equal((await read('upgraded-version.out')).trim(), `${packageVersion()}-2`);
    assert.equal(after.ActiveState, 'active', `the service runs after the upgrade: ${JSON.stringify(after)}`);
    assert.notEqual(after.MainPID, before.MainPID, 'restarted into the upgraded files');
    assert.equal((await read('conffile-kept.out')).trim(), '1', 'the operator\'s edit of sentinel.json survived the upgrade');
    const upgraded = JSON.parse(await stepOk('status-after-upgrade')) as { vault: { version: number } };
    assert.equal(upgraded.vault.version, 1);
    await stepOk('verify-after-upgrade');

    // The units install-units wrote, enabled and running next to the shipped one, before remove...
    await stepOk('install-units');
    const docLinks = await stepOk('doc-links');
    assert.doesNotMatch(docLinks, /^missing /m, `every Documentation= link install-units wrote names an installed file:\n${docLinks}`);
    assert.match(docLinks, /^ok \/usr\/share\/doc\/omnimind-sentinel\/docs\/BACKEND\.md$/m, docLinks);
    await stepOk('enable-units');
    await stepOk('enable-backend');
    const unitStates = async (name: string): Promise<Map<string, Record<string, string>>> =>
      new Map((await read(name)).trim().split('\n').map((l) => {
        const p = Object.fromEntries(l.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
        return [p.Id ?? '', p];
      }));
    const beforeRemove = await unitStates('before-remove-units.show');
    for (const u of ['omnimind-sentinel.service', 'omnimind-backend.socket', 'omnimind-mcp-worker.service', 'omnimind.slice']) {
      assert.equal(beforeRemove.get(u)?.ActiveState, 'active', `${u} runs before remove: ${JSON.stringify(beforeRemove.get(u))}`);
    }
    assert.equal(beforeRemove.get('omnimind-backend.service')?.UnitFileState, 'enabled');

    await stepOk('remove');
    // ...are all stopped and disabled by it (they would run files remove deletes); their files stay until purge.
    const afterRemove = await unitStates('after-remove-units.show');
    for (const [u, p] of afterRemove) {
      assert.ok(['inactive', ''].includes(p.ActiveState ?? ''), `${u} stopped by remove: ${JSON.stringify(p)}`);
      assert.ok(!['enabled', 'enabled-runtime', 'linked'].includes(p.UnitFileState ?? ''), `${u} not enabled after remove: ${JSON.stringify(p)}`);
    }
    assert.equal(afterRemove.size, 5, [...afterRemove.keys()].join(' '));
    assert.equal(await stepOk('links-after-remove'), '', 'no enablement link of an OmniMind unit after remove');
    assert.match(await stepOk('files-after-remove'), /omnimind-backend\.service\.d\n[^]*omnimind-mcp-worker\.service/, 'remove keeps the units install-units wrote (configuration; purge removes them)');
    const removed = props(await read('after-remove.show'));
    assert.equal(removed.ActiveState, 'inactive', JSON.stringify(removed));
    assert.doesNotMatch(await read('wants-link.out'), /omnimind-sentinel/, 'no multi-user.target.wants link after remove');
    assert.equal((await read('pkg-state.out')).trim(), 'deinstall ok config-files');
    await stepOk('conffile-after-remove');

    const purge = await stepOk('readme-uninstall');
    assert.match(purge, /chattr -R -f -i \/var\/lib\/omnimind/, 'purge says how to remove the vault');
    assert.match(purge, /chattr -f -a \/var\/log\/omnimind-sentinel\/audit\.log; rm -rf \/var\/log\/omnimind-sentinel/, 'purge says how to remove the audit log');
    const flags = await stepOk('vault-flags');
    assert.match(flags, /^\S*i\S* \/var\/lib\/omnimind\/phi-engine$/m, `the vault is still sealed: ${flags}`);
    assert.match(flags, /^\S*a\S* \/var\/log\/omnimind-sentinel\/audit\.log$/m, `the audit log is still append-only: ${flags}`);
    const listBefore = new Set((await read('before.list')).split('\n'));
    const afterPurge = (await read('after-purge.list')).split('\n');
    const added = afterPurge.filter((p) => !listBefore.has(p));
    const kept = (p: string): boolean => p === '/var/lib/omnimind' || p.startsWith('/var/lib/omnimind/') || p === '/var/log/omnimind-sentinel' || p === '/var/log/omnimind-sentinel/audit.log';
    assert.deepEqual(added.filter((p) => !kept(p)), [], 'after purge nothing is left but the vault and the audit log (docs/PACKAGE.md)');
    assert.ok(added.includes('/var/lib/omnimind/phi-engine') && added.includes('/var/log/omnimind-sentinel/audit.log'), added.slice(0, 20).join('\n'));
    const afterTeardown = new Set((await read('after-teardown.list')).split('\n'));
    assert.deepEqual([...afterTeardown].filter((p) => !listBefore.has(p)), [], 'after the README\'s teardown nothing of the package is left');
    assert.deepEqual([...listBefore].filter((p) => !afterTeardown.has(p)), [], 'and nothing that was there before is gone');
    t.diagnostic(`boot to poweroff ${String(boot.ms)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
