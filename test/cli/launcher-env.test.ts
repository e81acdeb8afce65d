// The executable's first line (src/cli/main.ts, src/cli/launcher-env.ts): env(1) starts Node without
// NODE_EXTRA_CA_CERTS, so Node does not read the CA file before any JavaScript runs, and the process
// puts the value back first thing, so every process it starts gets the user's environment. Run for
// real through the shebang line, as a shell runs `sentinel`, against `node main.js` with the same
// environment; the child is one the sentinel starts itself (lsattr(1) for a vault without the native
// addon), replaced on PATH by a script that records its environment and then runs the real one.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SAVED_CA_VAR, restoreLauncherEnv } from '../../src/cli/launcher-env.js';
import { BIN, CLI, assertOk, sentinel } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

// Node prints this before any JavaScript when it reads NODE_EXTRA_CA_CERTS and the file is not there.
const NODE_READ_IT = /Ignoring extra certs from/;

describe('cli: NODE_EXTRA_CA_CERTS and the launcher line', () => {
  it('the saved value is put back, an empty or absent one leaves the variable unset, and the saved variable goes', () => {
    const cases: [NodeJS.ProcessEnv, NodeJS.ProcessEnv][] = [
      [{ [SAVED_CA_VAR]: '/etc/ca.pem', HOME: '/root' }, { NODE_EXTRA_CA_CERTS: '/etc/ca.pem', HOME: '/root' }],
      [{ [SAVED_CA_VAR]: '', HOME: '/root' }, { HOME: '/root' }],
      [{ HOME: '/root' }, { HOME: '/root' }],
      [{ NODE_EXTRA_CA_CERTS: '/given.pem' }, { NODE_EXTRA_CA_CERTS: '/given.pem' }],
      // Set after the launcher ran (`node main.js` from a shell that has the saved variable): the given one stays.
      [{ [SAVED_CA_VAR]: '/saved.pem', NODE_EXTRA_CA_CERTS: '/given.pem' }, { NODE_EXTRA_CA_CERTS: '/given.pem' }],
    ];
    for (const [env, want] of cases) {
      const got = { ...env };
      restoreLauncherEnv(got);
      assert.deepEqual(got, want, JSON.stringify(env));
    }
  });

  describe('as processes', () => {
    let dir = '';
    let vault = '';
    let bin = '';
    let record = '';
    before(async () => {
      dir = tempDir('launcher-env');
      if (!isRoot()) return;
      writeTree(join(dir, 'src'), sampleTree('launcher'));
      assertOk(await sentinel(['keygen', '--out', join(dir, 'k')]));
      vault = join(dir, 'vault');
      assertOk(await sentinel(['vault', 'init', vault, '--trust', join(dir, 'k.pub')]));
      assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', join(dir, 'k.key'), '--vault', vault]));
      bin = join(dir, 'bin');
      record = join(dir, 'lsattr-env');
      mkdirSync(bin);
      const real = spawnSync('sh', ['-c', 'command -v lsattr'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(bin, 'lsattr'), `#!/bin/sh\nenv -0 > '${record}'\nexec '${real}' "$@"\n`);
      chmodSync(join(bin, 'lsattr'), 0o755);
    });

    /** `vault status` without the native addon, started as `how`; its exit, stderr and the environment lsattr(1) got. */
    /** `executable`: main.js or the package's bin (sentinel.cjs), each through its own first line. */
    function status(how: 'executable' | 'node main.js', ca: string | undefined, executable = CLI): { code: number | null; stderr: string; child: Map<string, string> } {
      rmSync(record, { force: true });
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, SENTINEL_NO_NATIVE: '1' };
      delete env.NODE_EXTRA_CA_CERTS;
      delete env[SAVED_CA_VAR];
      if (ca !== undefined) env.NODE_EXTRA_CA_CERTS = ca;
      const argv = ['vault', 'status', vault];
      const r = how === 'executable' ? spawnSync(executable, argv, { env, encoding: 'utf8' }) : spawnSync(process.execPath, [CLI, ...argv], { env, encoding: 'utf8' });
      const child = new Map(
        readFileSync(record, 'utf8')
          .split('\0')
          .filter((l) => l !== '')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
      );
      return { code: r.status, stderr: r.stderr, child };
    }

    it('through its shebang Node does not read the CA file, and the child still gets the variable as the user set it', (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      const ca = join(dir, 'no such dir', 'ca "bundle".pem');
      const direct = status('node main.js', ca);
      assert.equal(direct.code, 0, direct.stderr);
      assert.match(direct.stderr, NODE_READ_IT, 'node main.js: Node reads the file named by the variable');
      assert.equal(direct.child.get('NODE_EXTRA_CA_CERTS'), ca);

      for (const executable of [CLI, BIN]) {
        const launched = status('executable', ca, executable);
        assert.equal(launched.code, 0, launched.stderr);
        assert.equal(launched.stderr, '', `${executable} through the shebang: Node never saw the variable`);
        assert.equal(launched.child.get('NODE_EXTRA_CA_CERTS'), ca);
        assert.equal(launched.child.has(SAVED_CA_VAR), false);
        // Everything else the child got is what it gets when the sentinel runs as `node main.js`.
        assert.deepEqual(launched.child, direct.child, executable);
      }
    });

    it('without the variable, the child has neither it nor the saved one', (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      for (const executable of [CLI, BIN]) {
        const launched = status('executable', undefined, executable);
        assert.equal(launched.code, 0, launched.stderr);
        assert.equal(launched.child.has('NODE_EXTRA_CA_CERTS'), false);
        assert.equal(launched.child.has(SAVED_CA_VAR), false);
        assert.deepEqual(launched.child, status('node main.js', undefined).child, executable);
      }
    });

    it('through its shebang, the plain verify and status forms and --help end quietly when their reader goes away', (t) => {
      if (needs(t, isRoot(), 'root (chattr +i)')) return;
      for (const executable of [CLI, BIN]) {
        for (const args of [`vault verify '${vault}' --trust '${join(dir, 'k.pub')}'`, `vault status '${vault}'`, '--help']) {
          const r = spawnSync('bash', ['-c', `set -o pipefail; '${executable}' ${args} | true; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
          assert.equal(r.stderr, '', `${executable} ${args}`);
          assert.match(r.stdout, /status=0/, `${executable} ${args}`);
        }
      }
    });
  });
});
