// `sentinel daemon` whose vault.path holds no vault yet (missing, a file, a directory without vault.json):
// a refused configuration, exit 3 (the unit does not restart it), one stderr line naming the path, the
// setting and the command that creates the vault, and nothing written (no audit log, no state directory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { isRoot, needs } from '../helpers/env.js';

const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

function daemonRun(dir: string, name: string): { r: SpawnSyncReturns<string>; vault: string; audit: string; state: string; line: string } {
  const vault = join(dir, name);
  const tag = name.replace(/\//g, '-');
  const state = join(dir, `state-${tag}`);
  const audit = join(dir, `audit-${tag}.log`);
  const config = join(dir, `${tag}.json`);
  writeFileSync(config, JSON.stringify({ vault: { path: vault, trust: [join(dir, 'release.pub')] }, control: { socket: join(dir, 's.sock') }, audit: { path: audit }, stateDir: state }));
  const r = spawnSync(process.execPath, [cli, 'daemon', '--config', config], { encoding: 'utf8', timeout: 30_000 });
  const errLines = r.stderr.trim().split('\n');
  assert.equal(errLines.length, 1, `${name}: one line: ${r.stderr}`);
  return { r, vault, audit, state, line: errLines[0]! };
}

test('daemon with no vault at vault.path: exit 3, one line naming the path and `sentinel vault init` (or what to correct), no audit log', (t) => {
  // The socket directory must be root's own (the daemon's check before the vault's).
  if (needs(t, isRoot(), 'root')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-no-vault-'));
  try {
    const r0 = spawnSync(process.execPath, [cli, 'keygen', '--out', join(dir, 'release')], { encoding: 'utf8' });
    assert.equal(r0.status, 0, r0.stderr);
    writeFileSync(join(dir, 'a-file'), 'not a vault\n');
    mkdirSync(join(dir, 'empty-dir'));
    mkdirSync(join(dir, 'other-dir'));
    writeFileSync(join(dir, 'other-dir', 'notes.txt'), 'something else\n');
    // Nothing there yet (or an empty directory): `vault init` makes it there.
    for (const name of ['missing', 'empty-dir', 'missing-parent/vault']) {
      const { r, vault, audit, state, line } = daemonRun(dir, name);
      assert.equal(r.status, 3, `${name}: ${r.stderr}`);
      assert.ok(line.startsWith('sentinel: not-found: '), `${name}: ${r.stderr}`);
      assert.ok(line.includes(`sentinel vault init ${vault} --trust ${join(dir, 'release.pub')}`), `${name}: the command that creates it: ${r.stderr}`);
      assert.ok(line.endsWith(`(vault.path: ${vault})`), `${name}: where: the setting: ${r.stderr}`);
      assert.equal(existsSync(audit), false, `${name}: no audit log opened`);
      assert.equal(existsSync(state), false, `${name}: no state directory made`);
    }
    // Something that is no vault and where `vault init` would not make one (a file, a directory of other things): correct the setting.
    for (const name of ['a-file', 'other-dir']) {
      const { r, vault, audit, line } = daemonRun(dir, name);
      assert.equal(r.status, 3, `${name}: ${r.stderr}`);
      assert.match(line, /^sentinel: not-found: .*correct vault\.path/, `${name}: ${r.stderr}`);
      assert.doesNotMatch(line, /vault init/, `${name}: vault init would refuse it: ${r.stderr}`);
      assert.ok(line.endsWith(`(vault.path: ${vault})`), `${name}: ${r.stderr}`);
      assert.equal(existsSync(audit), false, `${name}: no audit log opened`);
    }
  } finally {
    // An audit log the daemon opened (a failure of this test) is append-only.
    spawnSync('chattr', ['-R', '-f', '-a', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('daemon start: a vault whose vault.json is gone, or a missing vault below a directory others can write, is not called "not there yet"', (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-no-vault-'));
  try {
    const r0 = spawnSync(process.execPath, [cli, 'keygen', '--out', join(dir, 'release')], { encoding: 'utf8' });
    assert.equal(r0.status, 0, r0.stderr);
    // The vault's own names without vault.json (removed by someone who lifted the seal): opened as a vault, refused, audited.
    for (const sub of ['releases', 'bundles', 'state', 'staging']) mkdirSync(join(dir, 'gutted', sub), { recursive: true, mode: 0o755 });
    const gutted = daemonRun(dir, 'gutted');
    assert.notEqual(gutted.r.status, 3, `a vault that lost its vault.json is not a configuration to fix by vault init: ${gutted.r.stderr}`);
    assert.doesNotMatch(gutted.line, /vault init/, gutted.line);
    assert.match(readFileSync(gutted.audit, 'utf8'), /"kind":"start"/, 'the refused start is in the audit log');
    // Missing below a directory others can write (whoever can write it could have removed the vault): insecure-path naming it, exit 1.
    mkdirSync(join(dir, 'open'), { mode: 0o777 });
    chmodSync(join(dir, 'open'), 0o777);
    const open = daemonRun(dir, 'open/vault');
    assert.equal(open.r.status, 1, open.r.stderr);
    assert.match(open.line, new RegExp(`^sentinel: insecure-path: .*\\(${join(dir, 'open').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`), open.line);
  } finally {
    spawnSync('chattr', ['-R', '-f', '-a', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});
