// install-units from a place the units cannot see: every shipped unit has ProtectHome=yes (no /root, /home,
// /run/user) and PrivateTmp=yes (its own empty /tmp and /var/tmp), so a checkout, a CLI or a node there makes
// `systemctl start omnimind-sentinel` fail. The command says so, naming the path and the sentinel's unit, and where
// to put the checkout instead (found in a fresh-operator trial: a clone in /root, whose only warning named the
// backend unit, then `systemctl enable --now omnimind-sentinel` failed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unitVisibilityWarnings } from '../../src/daemon/install-units.js';
import { sentinel } from '../helpers/cli-harness.js';

test('paths under /root, /home or /tmp are named, with the sentinel unit and where to put the checkout; /opt and /usr are not', () => {
  const opt = { node: '/usr/bin/node', cli: '/opt/omnimind-sentinel/dist/src/cli/sentinel.cjs', root: '/opt/omnimind-sentinel' };
  assert.deepEqual(unitVisibilityWarnings(opt), []);
  for (const [paths, hidden, why] of [
    [{ ...opt, cli: '/root/omnimind-sentinel/dist/src/cli/sentinel.cjs', root: '/root/omnimind-sentinel' }, '/root/omnimind-sentinel', 'ProtectHome=yes'],
    [{ ...opt, node: '/home/ops/.nvm/versions/node/v20.19.0/bin/node' }, '/home/ops/.nvm/versions/node/v20.19.0/bin/node', 'ProtectHome=yes'],
    [{ ...opt, cli: '/tmp/omnimind-sentinel/dist/src/cli/sentinel.cjs', root: '/tmp/omnimind-sentinel' }, '/tmp/omnimind-sentinel', 'PrivateTmp=yes'],
  ] as const) {
    const warnings = unitVisibilityWarnings(paths);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    const w = warnings[0]!;
    assert.ok(w.includes(hidden), `names ${hidden}: ${w}`);
    assert.ok(w.includes(why), `says why: ${w}`);
    assert.match(w, /omnimind-sentinel\.service/, w);
    assert.match(w, /\/opt/, `says where instead: ${w}`);
  }
});

test('sentinel install-units --cli under /tmp: exit 0, the unit files written, one warning naming the path and omnimind-sentinel.service', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync('/tmp/sentinel-units-paths-');
  try {
    const cli = join(dir, 'sentinel.cjs');
    writeFileSync(cli, '');
    const r = await sentinel(['install-units', '--prefix', join(dir, 'units'), '--no-reload', '--cli', cli]);
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.errLines.filter((l) => l.includes('omnimind-sentinel.service') && l.includes(cli));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0]!, /^sentinel: warning: .*PrivateTmp=yes/, warnings[0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
