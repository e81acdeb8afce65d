// `vault verify` is fail-closed against a root attacker (invariants 5 and 6): each kind of tamper
// done for real (chattr -i, change, chattr +i) is caught with the right code, through both ways of
// reading the tree (native pass, lstat walk) with the same problems, and a rewrite of files,
// manifest and vault.json with an attacker's key is caught with trust given from outside.
import assert from 'node:assert/strict';
import { chmodSync, linkSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { ErrorCode } from '../../src/core/errors.js';
import { encodeVaultConfig, parseVaultConfig } from '../../src/vault/layout.js';
import { openVault } from '../../src/vault/index.js';
import { walkTreeInspector } from '../../src/adapters/tree-inspector-walk.js';
import { getfattrLister } from '../../src/adapters/xattrs.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run, testKey } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';
import type { TestVault } from '../helpers/vault-factory.js';

after(cleanupAll);

/** Runs `tamper` as root would (flags lifted on `lift`, restored on `reseal`) on a fresh vault at v1, then verifies. */
async function tamperCase(
  label: string,
  tamper: (tree: string, tv: TestVault) => void | Promise<void>,
  expect: { code: ErrorCode; path?: RegExp },
): Promise<void> {
  const tv = await makeVault(label);
  try {
    const b = await tv.bundle(1);
    await tv.vault.deploy(b.path);
    assert.equal((await tv.vault.verify()).ok, true, 'intact before the tamper');
    await tamper(liveTree(tv.path), tv);
    const r = await tv.vault.verify();
    assert.equal(r.ok, false, `${label}: verify must fail`);
    const hit = r.problems.find((p) => p.code === expect.code && (expect.path === undefined || expect.path.test(p.path)));
    assert.ok(hit !== undefined, `${label}: expected a ${expect.code} problem${expect.path ? ` at ${String(expect.path)}` : ''}, got ${JSON.stringify(r.problems)}`);
    // The other way of reading the tree (the lstat walk with the flag store and the hash workers) finds the same.
    const walked = await (await openVault(tv.path, { ...tv.deps, inspector: walkTreeInspector(tv.deps.flags, tv.deps.hash) })).verify();
    assert.deepEqual(walked.problems, r.problems, `${label}: the walk and the native pass disagree`);
    assert.deepEqual([walked.checkedFiles, walked.checkedBytes], [r.checkedFiles, r.checkedBytes]);
    // And the walk reading extended attributes with getfattr (no addon) finds the same too.
    const getfattr = await (await openVault(tv.path, { ...tv.deps, inspector: walkTreeInspector(tv.deps.flags, tv.deps.hash, getfattrLister) })).verify();
    assert.deepEqual(getfattr.problems, r.problems, `${label}: the walk with getfattr and the native pass disagree`);
  } finally {
    await closeDeps(tv.deps);
  }
}

const chattr = (flag: '+i' | '-i', ...paths: string[]) => run('chattr', [flag, ...paths]);

describe('vault verify catches every root tamper', () => {
  test('flag lifted only (file)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('flag-file', (tree) => void chattr('-i', join(tree, 'VERSION')), { code: 'unsealed', path: /tree\/VERSION$/ });
  });

  test('flag lifted only (vault directory itself)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('flag-root', (_tree, tv) => void chattr('-i', tv.path), { code: 'unsealed', path: /^\.$/ });
  });

  test('flag lifted only (state/highest.json)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('flag-state', (_tree, tv) => void chattr('-i', join(tv.path, 'state', 'highest.json')), { code: 'unsealed', path: /highest\.json$/ });
  });

  test('a lifted flag stays reported when the attacker also drops a file into staging/', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('flag-staging');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      chattr('-i', join(liveTree(tv.path), 'VERSION'), tv.path);
      writeFileSync(join(tv.path, 'staging', 'bait'), 'x');
      const reopened = await openVault(tv.path, tv.deps);
      const r = await reopened.verify();
      assert.ok(r.problems.some((p) => p.code === 'unsealed' && p.path === '.'), JSON.stringify(r.problems));
      assert.ok(r.problems.some((p) => p.code === 'unsealed' && p.path.endsWith('tree/VERSION')), JSON.stringify(r.problems));
      // A look with the vault directory unsealed removes nothing: the leftover waits for a write operation.
      assert.deepEqual(stagingLeftovers(tv.path), ['bait'], 'a look does not clean up while a flag it would re-seal is lifted');
    } finally {
      await closeDeps(tv.deps);
    }
  });

  test('a user.* extended attribute on a live file, +i restored', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('xattr-user', (tree) => {
      const f = join(tree, 'phi', 'engine.py');
      chattr('-i', f);
      run('setfattr', ['-n', 'user.evil', '-v', '1', f]);
      chattr('+i', f);
    }, { code: 'tampered', path: /tree\/phi\/engine\.py$/ });
  });

  test('file capabilities on a live file (security.capability), +i restored', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('xattr-cap', (tree) => {
      const f = join(tree, 'phi', 'engine.py');
      chattr('-i', f);
      run('setcap', ['cap_setuid,cap_dac_override+ep', f]);
      chattr('+i', f);
    }, { code: 'tampered', path: /tree\/phi\/engine\.py$/ });
  });

  test('a default POSIX ACL on a live directory and a trusted.* attribute on a symlink', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('xattr-acl', (tree) => {
      const d = join(tree, 'phi');
      chattr('-i', d);
      run('setfacl', ['-d', '-m', 'u:65534:rwx', d]);
      chattr('+i', d);
      chattr('-i', tree);
      run('setfattr', ['-h', '-n', 'trusted.evil', '-v', '1', join(tree, 'current-engine')]);
      chattr('+i', tree);
    }, { code: 'tampered', path: /tree\/phi$/ });
  });

  test('a hard link to a live file from outside the vault, +i restored', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase('hardlink', (tree, tv) => {
      const f = join(tree, 'VERSION');
      chattr('-i', f);
      linkSync(f, join(dirname(tv.path), 'outside-link'));
      chattr('+i', f);
    }, { code: 'tampered', path: /tree\/VERSION$/ });
  });

  test('one byte changed, same size, +i restored', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'byte',
      (tree) => {
        const f = join(tree, 'phi/engine.py');
        chattr('-i', f);
        const b = readFileSync(f);
        b[0] = (b[0] ?? 0) ^ 1;
        writeFileSync(f, b);
        chattr('+i', f);
      },
      { code: 'hash-mismatch', path: /phi\/engine\.py$/ },
    );
  });

  test('size changed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'size',
      (tree) => {
        const f = join(tree, 'VERSION');
        chattr('-i', f);
        writeFileSync(f, 'v1 and more\n');
        chattr('+i', f);
      },
      { code: 'size-mismatch', path: /VERSION$/ },
    );
  });

  test('file added (sealed like the rest)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'added',
      (tree) => {
        const d = join(tree, 'phi');
        chattr('-i', d);
        writeFileSync(join(d, 'backdoor.py'), 'import os\n');
        chattr('+i', join(d, 'backdoor.py'), d);
      },
      { code: 'tampered', path: /phi\/backdoor\.py$/ },
    );
  });

  test('file removed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'removed',
      (tree) => {
        const d = join(tree, 'config');
        chattr('-i', d, join(d, 'phi.json'));
        unlinkSync(join(d, 'phi.json'));
        chattr('+i', d);
      },
      { code: 'tampered', path: /config\/phi\.json$/ },
    );
  });

  test('mode changed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'mode',
      (tree) => {
        const f = join(tree, 'phi/weights.bin');
        chattr('-i', f);
        chmodSync(f, 0o666);
        chattr('+i', f);
      },
      { code: 'tampered', path: /weights\.bin$/ },
    );
  });

  test('symlink retargeted', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'symlink',
      (tree) => {
        chattr('-i', tree);
        unlinkSync(join(tree, 'current-engine'));
        symlinkSync('config/phi.json', join(tree, 'current-engine'));
        chattr('+i', tree);
      },
      { code: 'tampered', path: /current-engine$/ },
    );
  });

  test('directory replaced by a file', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'type',
      (tree) => {
        const d = join(tree, 'config');
        chattr('-i', tree, d, join(d, 'phi.json'));
        rmSync(d, { recursive: true });
        writeFileSync(d, 'not a dir');
        chattr('+i', d, tree);
      },
      { code: 'tampered', path: /tree\/config$/ },
    );
  });

  test('`current` repointed outside releases/', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    await tamperCase(
      'current-out',
      (_tree, tv) => {
        chattr('-i', tv.path);
        symlinkSync('/etc', join(tv.path, 'current.evil'));
        run('mv', ['-T', join(tv.path, 'current.evil'), join(tv.path, 'current')]);
        chattr('+i', tv.path);
      },
      { code: 'tampered', path: /^current$/ },
    );
  });

  test('manifest, files and vault.json rewritten with an untrusted key: caught only with --trust from outside', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('resign');
    const attacker = testKey('attacker');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      // The attacker (root) makes the vault trust their key and deploys their own tree, consistently signed.
      const cfgPath = join(tv.path, 'vault.json');
      const cfg = parseVaultConfig(readFileSync(cfgPath, 'utf8'), cfgPath);
      chattr('-i', cfgPath, tv.path);
      unlinkSync(cfgPath);
      writeFileSync(cfgPath, encodeVaultConfig({ ...cfg, trust: { keys: [attacker.public], threshold: 1 } }));
      chattr('+i', cfgPath, tv.path);
      const hijacked = await openVault(tv.path, tv.deps);
      const evil = await tv.bundle(2, [{ type: 'file', path: 'VERSION', content: 'owned\n' }], { keys: [attacker] });
      await hijacked.deploy(evil.path);

      const own = await hijacked.verify({ scope: 'live' });
      assert.equal(own.ok, true, 'against its own (rewritten) vault.json the live release looks consistent');
      // The whole vault does not: the kept release v1 is signed by a key the rewritten policy does not trust.
      const all = await hijacked.verify();
      assert.ok(all.problems.some((p) => p.code === 'untrusted-key' && /^releases\/r00000001-/.test(p.path)), JSON.stringify(all.problems));
      const outside = await hijacked.verify({ trust: { keys: [tv.keys[0]!.public], threshold: 1 } });
      assert.equal(outside.ok, false);
      assert.equal(outside.trustSource, 'override');
      assert.ok(outside.problems.some((p) => p.code === 'untrusted-key'), JSON.stringify(outside.problems));
    } finally {
      await closeDeps(tv.deps);
    }
  });
  test('a wrong trust anchor reads as a trust problem, not as tampered stored bundles', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const tv = await makeVault('wrong-anchor');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      await tv.vault.deploy((await tv.bundle(2)).path);
      assert.equal((await tv.vault.verify()).ok, true, 'intact against its own trust');
      const r = await tv.vault.verify({ trust: { keys: [testKey('intruder').public], threshold: 1 } });
      assert.equal(r.ok, false);
      // (vault.json disagreeing with the anchors given is reported, as it must be: that is where they differ.)
      const bundles = r.problems.filter((p) => p.path.startsWith('bundles/'));
      assert.ok(bundles.length > 0, `each stored bundle is said to be unchecked: ${JSON.stringify(r.problems)}`);
      for (const p of bundles) {
        // Not 'tampered': nothing says the bundle changed; no release of its id verifies against this trust.
        assert.equal(p.code, 'untrusted-key', JSON.stringify(p));
        assert.match(p.message, /not checked/);
      }
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
