// `sentinel daemon` whose vault.path holds no vault yet (missing, a file, a directory without vault.json):
// a refused configuration, exit 3 (the unit does not restart it), one stderr line naming the path, the
// setting and the command that creates the vault, and nothing written (no audit log, no state directory).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { isRoot, needs } from '../helpers/env.js';

const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

test('daemon with no vault at vault.path: exit 3, one line naming the path and `sentinel vault init`, no audit log', (t) => {
  // The socket directory must be root's own (the daemon's check before the vault's).
  if (needs(t, isRoot(), 'root')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-no-vault-'));
  try {
    const r0 = spawnSync(process.execPath, [cli, 'keygen', '--out', join(dir, 'release')], { encoding: 'utf8' });
    assert.equal(r0.status, 0, r0.stderr);
    writeFileSync(join(dir, 'a-file'), 'not a vault\n');
    mkdirSync(join(dir, 'empty-dir'));
    for (const name of ['missing', 'a-file', 'empty-dir', 'missing-parent/vault']) {
      const vault = join(dir, name);
      const state = join(dir, `state-${name.replace('/', '-')}`);
      const audit = join(dir, `audit-${name.replace('/', '-')}.log`);
      const config = join(dir, `${name.replace('/', '-')}.json`);
      writeFileSync(config, JSON.stringify({ vault: { path: vault, trust: [join(dir, 'release.pub')] }, control: { socket: join(dir, 's.sock') }, audit: { path: audit }, stateDir: state }));
      const r = spawnSync(process.execPath, [cli, 'daemon', '--config', config], { encoding: 'utf8', timeout: 30_000 });
      const errLines = r.stderr.trim().split('\n');
      assert.equal(r.status, 3, `${name}: ${r.stderr}`);
      assert.equal(errLines.length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(errLines[0]!.startsWith('sentinel: not-found: '), `${name}: ${r.stderr}`);
      assert.ok(errLines[0]!.includes(`sentinel vault init ${vault} --trust ${join(dir, 'release.pub')}`), `${name}: the command that creates it: ${r.stderr}`);
      assert.ok(errLines[0]!.endsWith(`(vault.path: ${vault})`), `${name}: where: the setting: ${r.stderr}`);
      assert.equal(existsSync(audit), false, `${name}: no audit log opened`);
      assert.equal(existsSync(state), false, `${name}: no state directory made`);
    }
  } finally {
    // An audit log the daemon opened (today's failure) is append-only.
    spawnSync('chattr', ['-R', '-f', '-a', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});
