// A symlink planted where the vault keeps a file (vault.json, state/highest.json, a release's
// manifest.json or signatures.json, a stored bundle), done as a root attacker would (lift +i, swap,
// re-seal the directory), pointing at a copy of the very same bytes outside the vault: the worst
// case, since what it leads to checks out. The vault's rule is that its own paths are never
// followed, so each command that reads the file refuses it as `tampered` at that path with one
// clear line, through both entries (the executable's plain forms and main.js's command tree):
// status, verify (both scopes), heal and deploy. Operator-named files (a --trust key, a bundle
// path) still follow symlinks.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { assertFails, assertOk, BIN, CLI, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import type { CliResult } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, removeSealed, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const root = isRoot();
const owner = testKey('vault-symlinks');

interface Kit {
  dir: string;
  vault: string;
  keys: { key: string; pub: string };
  /** Directory names: v2 live, v1 kept. */
  live: string;
  kept: string;
  /** A bundle of version 3 for this vault, signed, not deployed. */
  next: string;
}

let n = 0;

/** A vault trusting `owner`, versions 1 and 2 deployed through the CLI, and a signed version 3. */
async function freshVault(label: string): Promise<Kit> {
  const dir = tempDir(`symlinks-${label}`);
  const keys = writeKeyFiles(dir, 'release', owner);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', `symlinks-${label}-${++n}`]));
  for (const v of [1, 2, 3]) writeTree(join(dir, `src-${v}`), sampleTree(`v${v}`));
  for (const v of [1, 2]) assertOk(await sentinel(['sign-and-deploy', join(dir, `src-${v}`), '--key', keys.key, '--vault', vault, '--version', String(v)]));
  const next = join(dir, 'v3.bundle');
  assertOk(await sentinel(['sign', join(dir, 'src-3'), '--key', keys.key, '--vault', vault, '--version', '3', '--out', next]));
  assertOk(await sentinel(['vault', 'verify', vault, '--trust', keys.pub]));
  const live = basename(readlinkSync(join(vault, 'current')));
  const kept = readdirSync(join(vault, 'releases')).find((d) => d !== live)!;
  return { dir, vault, keys, live, kept, next };
}

const chattr = (flag: '+i' | '-i', ...paths: string[]): void => void run('chattr', [flag, ...paths]);

/** Replaces the vault's file `rel` by a symlink to a copy of its bytes outside the vault; the directory is sealed again. */
function plant(kit: Kit, rel: string): string {
  const file = join(kit.vault, rel);
  const parent = join(file, '..');
  const copies = join(kit.dir, 'copies');
  mkdirSync(copies, { recursive: true });
  const copy = join(copies, rel.replaceAll('/', '_'));
  chattr('-i', file, parent);
  copyFileSync(file, copy);
  unlinkSync(file);
  symlinkSync(copy, file);
  chattr('+i', parent);
  return file;
}

const ENTRIES = [BIN, CLI] as const;

/** One stderr line, `tampered`, exit 1, naming `rel` and saying symlink. */
function assertRefused(r: CliResult, rel: string, what: string): void {
  assertFails(r, 'tampered');
  const line = r.errLines[0]!;
  assert.match(line, /symlink/, `${what}: says symlink: ${line}`);
  assert.ok(line.includes(rel), `${what}: names ${rel}: ${line}`);
}

interface Report {
  ok: boolean;
  problems: { code: string; path: string; message: string }[];
}

/** verify --json: exit 1, the first problem `tampered` at `rel` saying symlink; the human form's one line says the same. */
async function assertVerifyNames(kit: Kit, extra: string[], rel: string): Promise<void> {
  for (const entry of ENTRIES) {
    const what = `${entry} vault verify ${extra.join(' ')}`;
    const j = await sentinel(['vault', 'verify', kit.vault, ...extra, '--json'], { entry });
    assert.equal(j.code, 1, `${what}: exit 1\n${j.stdout}\n${j.stderr}`);
    const report = JSON.parse(j.stdout) as Report;
    assert.equal(report.ok, false, what);
    const first = report.problems[0];
    assert.ok(first !== undefined && first.code === 'tampered' && first.path === rel && /symlink/.test(first.message), `${what}: first problem tampered at ${rel} saying symlink: ${JSON.stringify(report.problems)}`);
    assert.equal(report.problems.filter((p) => p.path === rel).length, 1, `${what}: ${rel} named once: ${JSON.stringify(report.problems)}`);
    const h = await sentinel(['vault', 'verify', kit.vault, ...extra], { entry });
    assertRefused(h, rel, what);
  }
}

describe('a symlink where the vault keeps a file is refused, never followed', { concurrency: false }, () => {
  it('vault.json: status, verify (both scopes), heal and deploy each refuse it, tampered, one line', async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    const kit = await freshVault('config');
    const file = plant(kit, 'vault.json');
    for (const entry of ENTRIES) {
      for (const args of [
        ['vault', 'status', kit.vault],
        ['vault', 'status', kit.vault, '--json'],
        ['vault', 'verify', kit.vault],
        ['vault', 'verify', kit.vault, '--live-only'],
        ['vault', 'verify', kit.vault, '--trust', kit.keys.pub],
        ['vault', 'heal', kit.vault],
        ['deploy', kit.next, '--vault', kit.vault],
      ]) {
        const r = await sentinel(args, { entry });
        assertRefused(r, file, `${entry} ${args.join(' ')}`);
      }
    }
  });

  it('state/highest.json: verify (both scopes) names it tampered; deploy refuses it; status does not read it and shows it unsealed', async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    const kit = await freshVault('highest');
    const file = plant(kit, 'state/highest.json');
    await assertVerifyNames(kit, [], 'state/highest.json');
    await assertVerifyNames(kit, ['--live-only'], 'state/highest.json');
    for (const entry of ENTRIES) {
      assertRefused(await sentinel(['deploy', kit.next, '--vault', kit.vault], { entry }), 'state/highest.json', `${entry} deploy`);
      const s = await sentinel(['vault', 'status', kit.vault, '--json'], { entry });
      assert.equal(s.code, 1, `${entry} status: exit 1\n${s.stdout}\n${s.stderr}`);
      const st = JSON.parse(s.stdout) as { ok: boolean; unsealedPaths: string[] };
      assert.deepEqual(st.unsealedPaths, [file], `${entry} status`);
    }
  });

  for (const name of ['manifest.json', 'signatures.json']) {
    it(`the live release's ${name}: status and verify (both scopes) name it tampered`, async (t) => {
      if (needs(t, root, 'root (chattr +i)')) return;
      const kit = await freshVault(`live-${name.split('.')[0]!}`);
      const rel = `releases/${kit.live}/${name}`;
      plant(kit, rel);
      await assertVerifyNames(kit, [], rel);
      await assertVerifyNames(kit, ['--live-only'], rel);
      for (const entry of ENTRIES) {
        const s = await sentinel(['vault', 'status', kit.vault, '--json'], { entry });
        assert.equal(s.code, 1, `${entry} status: exit 1\n${s.stdout}\n${s.stderr}`);
        const st = JSON.parse(s.stdout) as { ok: boolean; liveProblem: string | null; signers: string[] };
        assert.match(st.liveProblem ?? '', /^tampered: .*symlink/, `${entry} status: ${s.stdout}`);
        assert.deepEqual(st.signers, [], `${entry} status: no signer for bytes not read`);
      }
    });
  }

  it("the live release's directory as a symlink to a copy, or as a regular file: status and verify name it tampered, never read through", async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    for (const kind of ['symlink', 'file'] as const) {
      const kit = await freshVault(`dir-${kind}`);
      const rel = `releases/${kit.live}`;
      const dir = join(kit.vault, rel);
      const copy = join(kit.dir, 'live-copy');
      run('cp', ['-a', dir, copy]);
      chattr('-i', join(kit.vault, 'releases'));
      removeSealed(dir);
      if (kind === 'symlink') symlinkSync(copy, dir);
      else writeFileSync(dir, 'not a release\n');
      chattr('+i', join(kit.vault, 'releases'));
      const says = kind === 'symlink' ? /release directory is a symlink/ : /release directory is not a directory/;
      for (const entry of ENTRIES) {
        const s = await sentinel(['vault', 'status', kit.vault, '--json'], { entry });
        assert.equal(s.code, 1, `${entry} status (${kind}): exit 1\n${s.stdout}\n${s.stderr}`);
        const st = JSON.parse(s.stdout) as { liveProblem: string | null; signers: string[] };
        assert.match(st.liveProblem ?? '', /^tampered: /, `${entry} status (${kind})`);
        assert.match(st.liveProblem ?? '', says, `${entry} status (${kind})`);
        assert.deepEqual(st.signers, [], `${entry} status (${kind})`);
        for (const extra of [[], ['--live-only']]) {
          const v = await sentinel(['vault', 'verify', kit.vault, ...extra, '--json'], { entry });
          assert.equal(v.code, 1, `${entry} verify ${extra.join(' ')} (${kind})`);
          const report = JSON.parse(v.stdout) as Report;
          assert.ok(report.problems.some((p) => p.code === 'tampered' && p.path === rel && says.test(p.message)), `${entry} verify ${extra.join(' ')} (${kind}): ${JSON.stringify(report.problems)}`);
          assert.equal(report.problems[0]?.code, 'tampered', `${entry} verify ${extra.join(' ')} (${kind}): ${JSON.stringify(report.problems)}`);
        }
      }
    }
  });

  it("a kept release's manifest.json: the default verify names it tampered", async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    const kit = await freshVault('kept');
    const rel = `releases/${kit.kept}/manifest.json`;
    plant(kit, rel);
    await assertVerifyNames(kit, [], rel);
  });

  it('the live release\'s stored bundle: the default verify names it tampered; heal refuses it and changes nothing', async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    const kit = await freshVault('bundle');
    const rel = `bundles/${kit.live}.bundle`;
    const file = plant(kit, rel);
    await assertVerifyNames(kit, [], rel);
    for (const entry of ENTRIES) {
      const h = await sentinel(['vault', 'heal', kit.vault, '--trust', kit.keys.pub], { entry });
      assertRefused(h, file, `${entry} vault heal`);
      assert.equal(basename(readlinkSync(join(kit.vault, 'current'))), kit.live, `${entry}: nothing healed`);
    }
  });

  it('operator-named files still follow symlinks: a --trust key and a bundle path given as symlinks work', async (t) => {
    if (needs(t, root, 'root (chattr +i)')) return;
    const kit = await freshVault('operator');
    const pubLink = join(kit.dir, 'pub-link');
    const bundleLink = join(kit.dir, 'bundle-link');
    symlinkSync(kit.keys.pub, pubLink);
    symlinkSync(kit.next, bundleLink);
    assertOk(await sentinel(['vault', 'verify', kit.vault, '--trust', pubLink]));
    assertOk(await sentinel(['deploy', bundleLink, '--vault', kit.vault], { entry: BIN }));
  });
});
