// What `sentinel vault verify` sees beyond bytes, modes and +i, done for real as a root attacker
// would (lift +i, change, re-seal) through the CLI: a vault.json that differs from the outside
// trust anchors (and a deploy with those anchors refused); extended attributes, POSIX ACLs, file
// capabilities and hard links in the live tree; extra entries in the vault's own directories; a
// corrupted kept bundle and a modified release that is not live. Each must exit 1 naming the path.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ErrorCode } from '../../src/core/errors.js';
import { encodeVaultConfig, parseVaultConfig } from '../../src/vault/layout.js';
import { testKey } from '../helpers/core-factory.js';
import { assertFails, assertOk, closeInProcessCli, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import type { CliResult } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, liveTree, run, sampleTree, sealablePaths, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());
after(() => closeInProcessCli());

const root = isRoot();
const owner = testKey('verify-coverage');
const attacker = testKey('verify-coverage-attacker');

interface Kit {
  dir: string;
  vault: string;
  keys: { key: string; pub: string };
  evil: { key: string; pub: string };
}

/** A vault trusting `owner`, with versions 1 and 2 deployed through the CLI (2 live, 1 kept). */
async function freshVault(label: string): Promise<Kit> {
  const dir = tempDir(`cov-${label}`);
  const keys = writeKeyFiles(dir, 'release', owner);
  const evil = writeKeyFiles(dir, 'evil', attacker);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', `cov-${label}`]));
  for (const v of [1, 2]) {
    writeTree(join(dir, `src-${v}`), sampleTree(`v${v}`));
    assertOk(await sentinel(['sign-and-deploy', join(dir, `src-${v}`), '--key', keys.key, '--vault', vault, '--version', String(v)]));
  }
  assertOk(await sentinel(['vault', 'verify', vault, '--trust', keys.pub]));
  return { dir, vault, keys, evil };
}

const chattr = (flag: '+i' | '-i', ...paths: string[]): void => void run('chattr', [flag, ...paths]);

/** Runs `act` with +i lifted on `paths` (re-sealed afterwards, as an attacker covering their tracks would). */
function unsealed(paths: string[], act: () => void): void {
  chattr('-i', ...paths);
  try {
    act();
  } finally {
    chattr('+i', ...paths);
  }
}

/** Asserts exit 1 with a problem of `code` whose path matches and whose message matches. */
function assertProblem(r: CliResult, code: ErrorCode, path: RegExp, message: RegExp): void {
  assert.equal(r.code, 1, `expected exit 1\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as { ok: boolean; problems: { code: string; path: string; message: string }[] };
  assert.equal(report.ok, false);
  const hit = report.problems.find((p) => p.code === code && path.test(p.path) && message.test(p.message));
  assert.ok(hit !== undefined, `expected a ${code} problem at ${String(path)} saying ${String(message)}, got ${JSON.stringify(report.problems)}`);
}

describe('vault verify with trust anchors from outside', { concurrency: false }, () => {
  it('a key added to vault.json, a removed key and another threshold are named; a deploy signed by the added key is refused with the anchors', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('anchors');
    const cfgPath = join(kit.vault, 'vault.json');
    const cfg = parseVaultConfig(readFileSync(cfgPath, 'utf8'), cfgPath);
    unsealed([cfgPath, kit.vault], () => {
      unlinkSync(cfgPath);
      writeFileSync(cfgPath, encodeVaultConfig({ ...cfg, trust: { keys: [owner.public, attacker.public], threshold: 1 } }));
    });
    // Against its own (rewritten) policy the vault is consistent; against the anchors it is not.
    assertOk(await sentinel(['vault', 'verify', kit.vault]));
    const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
    assertProblem(r, 'tampered', /^vault\.json$/, new RegExp(`trusts key\\(s\\) ${attacker.public.id} that the anchors do not$`));
    assertFails(r, 'tampered');
    const threshold = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, kit.evil.pub, '--threshold', '2', '--json']);
    assertProblem(threshold, 'tampered', /^vault\.json$/, /threshold 1, the anchors say 2$/);

    // The attacker's policy removed (threshold 1, only their key): the anchor key is named as missing.
    unsealed([cfgPath, kit.vault], () => {
      unlinkSync(cfgPath);
      writeFileSync(cfgPath, encodeVaultConfig({ ...cfg, trust: { keys: [attacker.public], threshold: 1 } }));
    });
    const gone = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
    assertProblem(gone, 'tampered', /^vault\.json$/, new RegExp(`does not trust anchor key\\(s\\) ${owner.public.id}`));

    // A bundle signed only by the attacker's key: refused when the command has the anchors, vault unchanged.
    writeTree(join(kit.dir, 'src-evil'), sampleTree('evil'));
    const bundle = join(kit.dir, 'evil.bundle');
    assertOk(await sentinel(['sign', join(kit.dir, 'src-evil'), '--key', kit.evil.key, '--vault', kit.vault, '--version', '3', '--out', bundle]));
    const before = snapshot(kit.vault);
    const refused = await sentinel(['deploy', bundle, '--vault', kit.vault, '--trust', kit.keys.pub]);
    assertFails(refused, 'tampered');
    assert.match(refused.errLines[0] ?? '', /trust anchors/);
    assert.deepEqual(snapshot(kit.vault), before, 'a refused deploy changes nothing');
    assertFails(await sentinel(['deploy', bundle, '--socket', join(kit.dir, 'none.sock'), '--trust', kit.keys.pub]), 'usage');
  });
});

describe('vault verify sees extended attributes, ACLs, file capabilities and hard links', { concurrency: false }, () => {
  /** One tamper on a fresh vault at v2, then `vault verify --json` must name it. */
  async function caught(label: string, tamper: (tree: string, kit: Kit) => void, path: RegExp, message: RegExp, also: [RegExp, RegExp][] = []): Promise<void> {
    const kit = await freshVault(label);
    tamper(liveTree(kit.vault), kit);
    const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
    assertProblem(r, 'tampered', path, message);
    for (const [p, m] of also) assertProblem(r, 'tampered', p, m);
    assertFails(r, 'tampered');
    // Without the addon (the lstat walk, chattr, getfattr) the same is found.
    const walk = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json'], { env: { SENTINEL_NO_NATIVE: '1' } });
    assertProblem(walk, 'tampered', path, message);
    assert.deepEqual((JSON.parse(walk.stdout) as { problems: unknown[] }).problems, (JSON.parse(r.stdout) as { problems: unknown[] }).problems, 'the walk and the native pass disagree');
  }

  it('file capabilities (setcap cap_setuid,cap_dac_override+ep) on a live file', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('cap', (tree) => unsealed([join(tree, 'phi/engine.py')], () => void run('setcap', ['cap_setuid,cap_dac_override+ep', join(tree, 'phi/engine.py')])), /^releases\/[^/]+\/tree\/phi\/engine\.py$/, /security\.capability .*file capabilities/);
  });

  it('a POSIX ACL on a live file', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('acl', (tree) => unsealed([join(tree, 'VERSION')], () => void run('setfacl', ['-m', 'u:65534:rwx', join(tree, 'VERSION')])), /tree\/VERSION$/, /system\.posix_acl_access .*POSIX ACL/);
  });

  it('a user.* extended attribute on a live directory', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('user', (tree) => unsealed([join(tree, 'config')], () => void run('setfattr', ['-n', 'user.note', '-v', 'x', join(tree, 'config')])), /tree\/config$/, /user\.note/);
  });

  it('an ACL on the live tree\'s root and an attribute on vault.json (the vault\'s own paths)', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('own', (tree, kit) => {
      unsealed([tree], () => void run('setfacl', ['-m', 'u:65534:rwx', tree]));
      unsealed([join(kit.vault, 'vault.json')], () => void run('setfattr', ['-n', 'user.x', '-v', '1', join(kit.vault, 'vault.json')]));
    }, /^releases\/[^/]+\/tree$/, /system\.posix_acl_access/, [[/^vault\.json$/, /user\.x/]]);
  });

  it('a hard link to a live file from outside the vault', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('link', (tree, kit) => unsealed([join(tree, 'phi/weights.bin')], () => void run('ln', [join(tree, 'phi/weights.bin'), join(kit.dir, 'outside')])), /tree\/phi\/weights\.bin$/, /2 hard links/);
  });

  it('a live file given to another user and a live directory to another group (chown, +i restored)', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('owner', (tree) => {
      unsealed([join(tree, 'phi/weights.bin')], () => void run('chown', ['65534', join(tree, 'phi/weights.bin')]));
      unsealed([join(tree, 'config')], () => void run('chgrp', ['65534', join(tree, 'config')]));
    }, /tree\/phi\/weights\.bin$/, /owner 65534:0, the tree belongs to 0:0/, [[/tree\/config$/, /owner 0:65534/]]);
  });

  it('the whole live tree given to another user', async (t) => {
    if (needs(t, root, 'root')) return;
    await caught('owner-all', (tree) => unsealed(sealablePaths(tree), () => void run('chown', ['-R', '-h', '65534', tree])), /^releases\/[^/]+\/tree$/, /owned by uid 65534; the vault belongs to uid 0/);
  });
});

describe('vault verify sees the whole vault: unlisted entries, kept releases, stored bundles', { concurrency: false }, () => {
  /** The kept release that is not live (v1) and its stored bundle's name. */
  async function oldRelease(kit: Kit): Promise<{ dir: string; bundle: string }> {
    const st = JSON.parse((await sentinel(['vault', 'status', kit.vault, '--json'])).stdout) as { releases: { releaseDir: string; releaseId: string; live: boolean }[] };
    const old = st.releases.find((r) => !r.live);
    assert.ok(old !== undefined, JSON.stringify(st));
    return { dir: old.releaseDir, bundle: `${old.releaseId}.bundle` };
  }

  it('an extra entry in VAULT/, releases/, bundles/ and state/ is each named', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('extras');
    const v = kit.vault;
    unsealed([v], () => writeFileSync(join(v, 'notes.txt'), 'x'));
    unsealed([join(v, 'releases')], () => mkdirSync(join(v, 'releases', 'payload')));
    unsealed([join(v, 'bundles')], () => writeFileSync(join(v, 'bundles', 'r00000009-0123456789ab.bundle'), 'x'));
    unsealed([join(v, 'state')], () => writeFileSync(join(v, 'state', 'extra.json'), '{}'));
    const r = await sentinel(['vault', 'verify', v, '--trust', kit.keys.pub, '--json']);
    assertProblem(r, 'tampered', /^notes\.txt$/, /extra entry in the vault directory/);
    assertProblem(r, 'tampered', /^releases\/payload$/, /extra entry in releases\//);
    assertProblem(r, 'tampered', /^bundles\/r00000009-0123456789ab\.bundle$/, /stored bundle without a kept release/);
    assertProblem(r, 'tampered', /^state\/extra\.json$/, /extra entry in state\//);
    assertFails(r, 'tampered');
    // Checked with --live-only too: the vault's own directories are cheap to list.
    assertProblem(await sentinel(['vault', 'verify', v, '--trust', kit.keys.pub, '--live-only', '--json']), 'tampered', /^state\/extra\.json$/, /extra entry/);
  });

  it('a corrupted stored bundle of a release that is not live is named (not with --live-only)', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('bundle');
    const { bundle } = await oldRelease(kit);
    const path = join(kit.vault, 'bundles', bundle);
    unsealed([path], () => {
      const bytes = readFileSync(path);
      bytes[bytes.length - 10] = (bytes[bytes.length - 10]! + 1) & 0xff;
      writeFileSync(path, bytes);
    });
    const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
    assertProblem(r, 'hash-mismatch', new RegExp(`^bundles/${bundle.replace('.', '\\.')}$`), /kept bundle differs/);
    assertFails(r, 'hash-mismatch');
    const live = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--live-only', '--json']);
    assertOk(live);
    assert.equal((JSON.parse(live.stdout) as { kept: unknown }).kept, null);
  });

  it('a kept release whose stored bundle is gone is named, the live one too (not with --live-only)', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('nobundle');
    const { bundle } = await oldRelease(kit);
    const bundles = join(kit.vault, 'bundles');
    const liveBundle = readdirSync(bundles).find((n) => n !== bundle);
    assert.ok(liveBundle !== undefined);
    for (const gone of [bundle, liveBundle]) {
      unsealed([bundles], () => {
        chattr('-i', join(bundles, gone));
        unlinkSync(join(bundles, gone));
      });
      const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
      assertProblem(r, 'tampered', new RegExp(`^bundles/${gone.replace('.', '\\.')}$`), /kept release without its stored bundle/);
      assertFails(r, 'tampered');
      assertOk(await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--live-only', '--json']));
    }
  });

  it('a state/highest.json that is not a highest version (malformed, missing fields) is named, with --live-only too', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('highest');
    const highest = join(kit.vault, 'state', 'highest.json');
    for (const [text, message] of [['{}', /highest\.json has bad fields: version, releaseId/], ['{"version": 2', /highest\.json is not valid JSON/]] as const) {
      unsealed([highest], () => writeFileSync(highest, text));
      for (const scope of [[], ['--live-only']]) {
        const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, ...scope, '--json']);
        assertProblem(r, 'tampered', /^state\/highest\.json$/, message);
        assertFails(r, 'tampered');
      }
    }
  });

  it('a modified file in a kept release that is not live is named', async (t) => {
    if (needs(t, root, 'root')) return;
    const kit = await freshVault('oldrel');
    const { dir } = await oldRelease(kit);
    const file = join(kit.vault, 'releases', dir, 'tree', 'VERSION');
    unsealed([file], () => writeFileSync(file, 'v9\n'));
    const r = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.keys.pub, '--json']);
    assertProblem(r, 'hash-mismatch', new RegExp(`^releases/${dir}/tree/VERSION$`), /SHA-256/);
    const report = JSON.parse(r.stdout) as { kept: { releases: string[]; bundles: string[] } };
    assert.deepEqual(report.kept.releases, [dir]);
    assert.equal(report.kept.bundles.length, 2);
  });
});
