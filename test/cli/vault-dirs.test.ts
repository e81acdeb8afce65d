// Who owns the way into the vault (docs/SECURITY.md#what-the-vault-requires-of-its-directories),
// through the CLI: `vault init` refuses a directory (or a parent) not owned by root or writable by
// group or others, naming the path, its owner and its mode; every later operation refuses a vault
// whose directories were given away, and an unprivileged owner racing the deploys for
// SENTINEL_RACE_SECONDS (default 8; the long run is 30) never gets a file into the vault.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ONE_YEAR_LATER, T0, testKey } from '../helpers/core-factory.js';
import { cleanupAll, run, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { createBundle } from '../../src/vault/sign.js';

after(() => cleanupAll());

const NOBODY = 65534;
const RACE_SECONDS = Number(process.env.SENTINEL_RACE_SECONDS ?? '8');

function expectInsecure(r: Awaited<ReturnType<typeof sentinel>>, path: string, owner: number, mode: string): void {
  assertFails(r, 'insecure-path');
  const line = r.errLines[0]!;
  assert.ok(line.endsWith(`(${path})`), `names the path: ${line}`);
  assert.ok(line.includes(`uid ${owner}`) && line.includes(`mode ${mode}`), `names owner and mode: ${line}`);
}

describe('vault directories: owned by root, writable by nobody else', { concurrency: false }, () => {
  it('vault init refuses an existing directory or a parent that someone else owns or may write, and creates nothing', async (t) => {
    if (needs(t, isRoot(), 'root (chown, chattr +i)')) return;
    const base = tempDir('dirs-init');
    const k = writeKeyFiles(base, 'k', testKey('dirs'));
    const cases: { name: string; make: (d: string) => { bad: string; owner: number; mode: string } }[] = [
      { name: 'owned by nobody', make: (d) => (chownSync(d, NOBODY, NOBODY), { bad: d, owner: NOBODY, mode: '0755' }) },
      { name: 'mode 0777', make: (d) => (chmodSync(d, 0o777), { bad: d, owner: 0, mode: '0777' }) },
      { name: 'group-writable', make: (d) => (chmodSync(d, 0o775), { bad: d, owner: 0, mode: '0775' }) },
      {
        name: 'parent owned by nobody',
        make: (d) => {
          chownSync(join(d, '..'), NOBODY, NOBODY);
          return { bad: join(d, '..'), owner: NOBODY, mode: '0755' };
        },
      },
      {
        name: 'parent writable by others, not sticky',
        make: (d) => {
          chmodSync(join(d, '..'), 0o777);
          return { bad: join(d, '..'), owner: 0, mode: '0777' };
        },
      },
    ];
    for (const c of cases) {
      const parent = join(base, c.name.replace(/[^a-z0-9]+/g, '-'));
      const vault = join(parent, 'vault');
      mkdirSync(vault, { recursive: true, mode: 0o755 });
      chmodSync(parent, 0o755);
      chmodSync(vault, 0o755);
      const { bad, owner, mode } = c.make(vault);
      expectInsecure(await sentinel(['vault', 'init', vault, '--trust', k.pub]), bad, owner, mode);
      assert.deepEqual(readdirSync(vault), [], `${c.name}: nothing created`);
    }
    // The same with a directory that does not exist yet: its parent decides.
    const open = join(base, 'open');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    expectInsecure(await sentinel(['vault', 'init', join(open, 'vault'), '--trust', k.pub]), open, 0, '0777');
    assert.equal(existsSync(join(open, 'vault')), false);
    // A root-owned sticky parent (like /tmp) is fine.
    const sticky = join(base, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    assertOk(await sentinel(['vault', 'init', join(sticky, 'vault'), '--trust', k.pub]));
  });

  it('a vault whose directories were given away is refused by every operation, and verify says so', async (t) => {
    if (needs(t, isRoot(), 'root (chown, chattr +i)')) return;
    const base = tempDir('dirs-ops');
    const k = writeKeyFiles(base, 'k', testKey('dirs'));
    const src = join(base, 'src');
    writeTree(src, sampleTree('v1'));
    for (const sub of ['', 'releases', 'bundles', 'state', 'staging']) {
      const vault = join(base, `vault-${sub || 'root'}`);
      assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub, '--vault-id', 'dirs']));
      assertOk(await sentinel(['sign-and-deploy', src, '--key', k.key, '--vault', vault]));
      const dir = join(vault, sub);
      const sealed = sub !== 'staging';
      if (sealed) run('chattr', ['-i', dir]);
      chownSync(dir, NOBODY, NOBODY);
      if (sealed) run('chattr', ['+i', dir]);
      const before = snapshot(vault);
      expectInsecure(await sentinel(['sign-and-deploy', src, '--key', k.key, '--vault', vault]), dir, NOBODY, sub === 'staging' ? '0700' : '0755');
      expectInsecure(await sentinel(['vault', 'verify', vault]), dir, NOBODY, sub === 'staging' ? '0700' : '0755');
      assertFails(await sentinel(['vault', 'rollback', vault]), 'insecure-path');
      assertFails(await sentinel(['vault', 'recover', vault]), 'insecure-path');
      assert.deepEqual(snapshot(vault), before, `${sub || 'VAULT'}: nothing changed`);
    }
  });

  it(`the owner of the vault directory races the deploys for ${RACE_SECONDS} s and never gets a file into the vault`, { timeout: 120_000 + RACE_SECONDS * 1000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chown, setuid child, chattr +i)')) return;
    const base = tempDir('dirs-race');
    chmodSync(base, 0o755);
    const key = testKey('dirs-race');
    const k = writeKeyFiles(base, 'k', key);
    const vault = join(base, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub, '--vault-id', 'race']));
    const src = join(base, 'src');
    writeTree(src, sampleTree('race'));
    const bundles: string[] = [];
    for (let v = 1; v <= 40; v++) {
      const out = join(base, `v${v}.bundle`);
      await createBundle(src, { keys: [key.secret], vaultId: 'race', version: v, created: T0, expires: ONE_YEAR_LATER, out });
      bundles.push(out);
    }
    assertOk(await sentinel(['deploy', bundles[0]!, '--vault', vault]));
    const liveBefore = readlinkSync(join(vault, 'current'));
    // The misconfiguration: the vault directory handed to an unprivileged user after init.
    run('chattr', ['-i', vault]);
    chownSync(vault, NOBODY, NOBODY);
    run('chattr', ['+i', vault]);
    const evil = join(base, 'evil');
    mkdirSync(evil);
    chownSync(evil, NOBODY, NOBODY);
    // As nobody: whenever VAULT/ is writable, move staging/ away and put a directory of its own there,
    // and replace any release directory that appears in it with a copy holding phi.py of its own.
    const attacker = `
      const fs = require('node:fs'); const p = require('node:path');
      const V = ${JSON.stringify(vault)}, E = ${JSON.stringify(evil)}; const end = Date.now() + ${RACE_SECONDS * 1000};
      let wins = 0;
      while (Date.now() < end) {
        try { fs.renameSync(p.join(V, 'staging'), p.join(E, 'old-' + Date.now())); fs.mkdirSync(p.join(V, 'staging')); wins++; } catch {}
        try {
          for (const n of fs.readdirSync(p.join(V, 'staging'))) {
            const d = p.join(V, 'staging', n);
            if (!fs.existsSync(p.join(d, 'signatures.json'))) continue;
            const own = p.join(E, 'own-' + n); fs.cpSync(d, own, { recursive: true });
            fs.writeFileSync(p.join(own, 'tree', 'phi', 'engine.py'), 'import os  # attacker\\n');
            fs.renameSync(d, p.join(E, 'taken-' + n)); fs.renameSync(own, d); wins++;
          }
        } catch {}
      }
      process.stdout.write(String(wins));`;
    const child = spawn(process.execPath, ['-e', attacker], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
    let wins = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (wins += d));
    const done = new Promise<void>((r) => child.on('exit', () => r()));
    const problems: string[] = [];
    let i = 1;
    const end = Date.now() + RACE_SECONDS * 1000;
    // The last bundle is kept for the deploy after the race (refused deploys are quick: the loop may use up the rest).
    while (Date.now() < end && i < bundles.length - 1) {
      const r = await sentinel(['deploy', bundles[i++]!, '--vault', vault]);
      if (r.code === 0 || !(r.errLines[0] ?? '').startsWith('sentinel: insecure-path: ')) problems.push(`deploy ${i}: exit ${String(r.code)} ${r.stdout} ${r.stderr}`);
    }
    await done;
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.equal(readlinkSync(join(vault, 'current')), liveBefore, 'the live release never changed');
    assert.equal(wins, '0', 'the vault directory never became writable for its owner');
    // Given back to root, the vault is intact and deploys again.
    run('chattr', ['-i', vault]);
    chownSync(vault, 0, 0);
    run('chattr', ['+i', vault]);
    assertOk(await sentinel(['vault', 'verify', vault]));
    assertOk(await sentinel(['deploy', bundles[i]!, '--vault', vault]));
  });
});
