// The crash marker (a pid in staging/.lock) seen by the commands that only look, through both
// entries (the executable's plain forms and main.js): `vault status` and `vault verify` report an
// interrupted operation and the flags that are lifted, and change nothing; re-sealing is left to a
// write operation (`vault recover`, `vault heal`, a deploy). First with a forged marker (whoever can
// lift +i can write a pid there), then after a genuine crash: a deploy killed with SIGKILL at each
// step the crash tests use, with real chattr.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { assertOk, BIN, CLI, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import type { CliResult } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, lsattrImmutable, run, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const owner = testKey('crash-marker');
const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');
const ENTRIES = [BIN, CLI] as const;
const DEPLOY_STEPS = ['verified', 'staged', 'sealed-release', 'before-swap', 'swapped', 'highest-updated', 'pruning', 'pruned'];
const COMMITTED = new Set(['swapped', 'highest-updated', 'pruning', 'pruned']);

interface Kit {
  dir: string;
  vault: string;
  pub: string;
  /** A signed bundle of version 2, not deployed. */
  next: string;
}

let n = 0;

/** A vault with version 1 deployed through the CLI, and a signed version 2. */
async function freshVault(label: string): Promise<Kit> {
  const dir = tempDir(`marker-${label}`);
  const keys = writeKeyFiles(dir, 'release', owner);
  const vault = join(dir, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', `marker-${label}-${++n}`]));
  for (const v of [1, 2]) writeTree(join(dir, `src-${v}`), sampleTree(`v${v}`));
  assertOk(await sentinel(['sign-and-deploy', join(dir, 'src-1'), '--key', keys.key, '--vault', vault, '--version', '1']));
  const next = join(dir, 'v2.bundle');
  assertOk(await sentinel(['sign', join(dir, 'src-2'), '--key', keys.key, '--vault', vault, '--version', '2', '--out', next]));
  return { dir, vault, pub: keys.pub, next };
}

const lockOf = (kit: Kit): string => join(kit.vault, 'staging', '.lock');

interface Problem {
  code: string;
  path: string;
  message: string;
}

/** `vault verify --json` and `vault status --json` through `entry`: both exit 1 and the look changes nothing. */
async function look(kit: Kit, entry: string, what: string): Promise<{ problems: Problem[]; status: { ok: boolean; interrupted: boolean; unsealedPaths: string[] } }> {
  const before = snapshot(kit.vault);
  const v: CliResult = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub, '--json'], { entry });
  assert.equal(v.code, 1, `${what}: verify exits 1 (${entry})\n${v.stdout}\n${v.stderr}`);
  const report = JSON.parse(v.stdout) as { ok: boolean; problems: Problem[] };
  assert.equal(report.ok, false);
  const s: CliResult = await sentinel(['vault', 'status', kit.vault, '--json'], { entry });
  assert.equal(s.code, 1, `${what}: status exits 1 (${entry})\n${s.stdout}\n${s.stderr}`);
  const status = JSON.parse(s.stdout) as { ok: boolean; interrupted: boolean; unsealedPaths: string[] };
  assert.equal(status.ok, false);
  assert.equal(status.interrupted, true, `${what}: status says an operation was interrupted (${entry})`);
  const human = await sentinel(['vault', 'status', kit.vault], { entry });
  assert.match(human.stdout, /interrupted.*sentinel vault recover/, `${what}: status's human form says what to run (${entry}): ${human.stdout}`);
  assert.deepEqual(snapshot(kit.vault), before, `${what}: status and verify changed nothing, the marker included (${entry})`);
  const marker = report.problems.filter((p) => p.path === 'staging/.lock');
  assert.equal(marker.length, 1, `${what}: verify names the interrupted operation once (${entry}): ${JSON.stringify(report.problems)}`);
  assert.match(marker[0]!.message, /interrupted/);
  assert.match(marker[0]!.message, /sentinel vault recover/, 'and says what to run');
  return { problems: report.problems, status };
}

/** Runs the crash child deploying `bundle`, paused at `step`, and kills it with SIGKILL there. */
function deployKilledAt(vault: string, bundle: string, step: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, vault, 'deploy', bundle], { env: { ...process.env, SENTINEL_TEST_PAUSE_AT: step }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    const guard = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`the crash child did not pause at ${step} within 30 s: ${out} ${err}`));
    }, 30_000);
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!killed && out.split('\n').includes(`paused:${step}`)) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.on('exit', () => {
      clearTimeout(guard);
      if (killed) resolve();
      else reject(new Error(`the crash child exited before ${step}: ${out} ${err}`));
    });
  });
}

describe('a crash marker seen by the commands that only look', () => {
  it('a forged marker does not make status or verify re-seal lifted flags: they are named, and vault recover re-seals them', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const kit = await freshVault('forged');
    const release = readlinkSync(join(kit.vault, 'current'));
    const releaseDir = join(kit.vault, release);
    const file = join(releaseDir, 'tree', 'VERSION');
    // A root attacker lifts +i (bytes unchanged) and writes a pid into the lock file.
    run('chattr', ['-i', join(kit.vault, 'state'), releaseDir, file]);
    writeFileSync(lockOf(kit), '4194000\n');
    for (const entry of ENTRIES) {
      const { problems, status } = await look(kit, entry, 'forged marker');
      const unsealed = problems.filter((p) => p.code === 'unsealed').map((p) => p.path);
      for (const p of ['state', release, `${release}/tree/VERSION`]) assert.ok(unsealed.some((u) => u === p || u.endsWith(p)), `verify names ${p} unsealed (${entry}): ${unsealed.join(', ')}`);
      for (const p of [join(kit.vault, 'state'), releaseDir]) assert.ok(status.unsealedPaths.includes(p), `status names ${p} unsealed (${entry}): ${status.unsealedPaths.join(', ')}`);
    }
    for (const p of [join(kit.vault, 'state'), releaseDir, file]) assert.equal(lsattrImmutable(p), false, `${p} is still unsealed after the looks`);
    assert.equal(readFileSync(lockOf(kit), 'utf8'), '4194000\n', 'the marker is kept for a write operation');
    // A write operation re-seals: vault recover.
    const r = await sentinel(['vault', 'recover', kit.vault, '--json']);
    assertOk(r);
    assert.ok((JSON.parse(r.stdout) as { resealed: number }).resealed >= 2, r.stdout);
    assertOk(await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub]));
    assert.equal(readFileSync(lockOf(kit), 'utf8'), '', 'the marker is gone once recovered');
  });

  it('leftovers without a marker do not make a look re-seal a vault directory found unsealed: the root with a current.tmp, bundles/ with a stray name', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const cases: [string, (kit: Kit) => void][] = [
      ['.', (kit) => symlinkSync('releases/elsewhere', join(kit.vault, 'current.tmp'))],
      [
        'bundles',
        (kit) => {
          writeFileSync(join(kit.vault, 'bundles', 'stray'), 'left by someone\n');
          mkdirSync(join(kit.vault, 'staging', 'r00000009-0123456789ab'));
        },
      ],
    ];
    for (const [dir, leave] of cases) {
      const kit = await freshVault(`leftover-${dir === '.' ? 'root' : dir}`);
      const abs = join(kit.vault, dir);
      run('chattr', ['-i', abs]);
      leave(kit);
      for (const entry of ENTRIES) {
        for (const args of [['vault', 'verify', kit.vault, '--trust', kit.pub, '--json'], ['vault', 'status', kit.vault, '--json']]) {
          const r = await sentinel(args, { entry });
          assert.equal(r.code, 1, `${args[1]} with ${dir} unsealed exits 1 (${entry}): ${r.stdout} ${r.stderr}`);
          assert.equal(lsattrImmutable(abs), false, `${args[1]} left ${dir} unsealed (${entry})`);
        }
        const v = JSON.parse((await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub, '--json'], { entry })).stdout) as { problems: Problem[] };
        assert.ok(v.problems.some((p) => p.code === 'unsealed' && p.path === dir), `verify names ${dir} unsealed (${entry}): ${JSON.stringify(v.problems)}`);
      }
      // A write operation recovers and re-seals.
      assertOk(await sentinel(['vault', 'recover', kit.vault]));
      assertOk(await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub]));
    }
  });

  for (const step of DEPLOY_STEPS) {
    it(`after a deploy killed at "${step}": status and verify say so and what to run, change nothing; vault recover leaves v${COMMITTED.has(step) ? 2 : 1} intact`, async (t) => {
      if (needs(t, isRoot(), 'root (chattr)')) return;
      const kit = await freshVault(`kill-${step}`);
      await deployKilledAt(kit.vault, kit.next, step);
      assert.notEqual(readFileSync(lockOf(kit), 'utf8'), '', 'the killed deploy left its marker');
      for (const entry of ENTRIES) await look(kit, entry, `killed at ${step}`);
      const entry = ENTRIES[DEPLOY_STEPS.indexOf(step) % 2]!;
      assertOk(await sentinel(['vault', 'recover', kit.vault], { entry }));
      const v = await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub, '--json'], { entry });
      assertOk(v);
      assert.equal((JSON.parse(v.stdout) as { version: number }).version, COMMITTED.has(step) ? 2 : 1);
      const s = await sentinel(['vault', 'status', kit.vault, '--json'], { entry });
      assertOk(s);
      assert.equal((JSON.parse(s.stdout) as { interrupted: boolean }).interrupted, false);
    });
  }
});
