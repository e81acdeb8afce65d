// Crash consistency (invariant 3): a child process deploying is killed with SIGKILL at every deploy
// step and at random moments; after `openVault` recovery the vault verifies, serves exactly the old
// or the new release (never a mix), has no leftovers, and is sealed. Same for heal and rollback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { openVault } from '../../src/vault/index.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run, sampleTree } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';
import type { TestVault, TreeSpec } from '../helpers/vault-factory.js';

after(cleanupAll);

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');
const DEPLOY_STEPS = ['verified', 'staged', 'sealed-release', 'before-swap', 'swapped', 'highest-updated', 'pruned'];
const COMMITTED = new Set(['swapped', 'highest-updated', 'pruned']);

/** Starts the child; kills it with SIGKILL once `killWhen(line)` says so (or after `killAfterReadyMs`). */
function runChild(args: string[], env: Record<string, string>, opts: { killOn?: string; killAfterReadyMs?: number }): Promise<{ killed: boolean; lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let killed = false;
    let buf = '';
    const kill = () => {
      if (!killed) {
        killed = true;
        p.kill('SIGKILL');
      }
    };
    const guard = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`crash child did not reach ${opts.killOn ?? 'ready'} within 30 s; output: ${lines.join('|')} ${stderr}`));
    }, 30_000);
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => (stderr += d));
    p.stdout.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (opts.killOn !== undefined && line === opts.killOn) kill();
        if (opts.killAfterReadyMs !== undefined && line === 'ready') setTimeout(kill, opts.killAfterReadyMs);
      }
    });
    p.on('exit', () => {
      clearTimeout(guard);
      resolve({ killed, lines, stderr });
    });
  });
}

/** A vault at version 3 (three kept releases, so the next deploy also prunes) and a v4 bundle. */
async function vaultAtThree(label: string, tree4?: TreeSpec): Promise<{ tv: TestVault; bundle4: string }> {
  const tv = await makeVault(label);
  for (let v = 1; v <= 3; v++) await tv.vault.deploy((await tv.bundle(v)).path);
  const b4 = await tv.bundle(4, tree4);
  return { tv, bundle4: b4.path };
}

/** After a crash: recovery by openVault, then the vault must be intact at exactly `old` or `new`. */
async function assertRecovered(tv: TestVault, allowed: number[]): Promise<number> {
  const vault = await openVault(tv.path, tv.deps);
  const r = await vault.verify();
  assert.deepEqual(r.problems, [], 'vault must verify after recovery');
  assert.ok(r.version !== null && allowed.includes(r.version), `live version ${r.version} not in ${allowed.join(',')}`);
  const version = r.version;
  assert.equal(readFileSync(join(liveTree(tv.path), 'VERSION'), 'utf8'), `v${version}\n`, 'live content is the live version');
  assert.deepEqual(stagingLeftovers(tv.path), [], 'no leftovers in staging/');
  assert.equal(existsSync(join(tv.path, 'current.tmp')), false, 'no current.tmp');
  const st = await vault.status();
  assert.equal(st.sealed, true, `unsealed after recovery: ${st.unsealedPaths.join(', ')}`);
  assert.ok(st.highestVersion >= version);
  return version;
}

/** A tree large enough that random kills land inside staging and sealing. */
function bigTree(): TreeSpec {
  const t: TreeSpec = sampleTree('v4');
  t.push({ type: 'dir', path: 'many' });
  for (let i = 0; i < 300; i++) t.push({ type: 'file', path: `many/f${String(i).padStart(4, '0')}`, content: `file ${i}\n`.repeat(20) });
  t.push({ type: 'file', path: 'big.bin', content: Buffer.alloc(24 * 1024 * 1024, 7) });
  return t;
}

describe('crash consistency (SIGKILL)', () => {
  for (const step of DEPLOY_STEPS) {
    test(`killed at deploy step "${step}"`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const { tv, bundle4 } = await vaultAtThree(`crash-${step}`);
      try {
        const r = await runChild([tv.path, 'deploy', bundle4], { SENTINEL_TEST_PAUSE_AT: step }, { killOn: `paused:${step}` });
        assert.ok(r.killed, `child was not killed at ${step}: ${r.lines.join('|')} ${r.stderr}`);
        const version = await assertRecovered(tv, [COMMITTED.has(step) ? 4 : 3]);
        if (version === 3) {
          // The interrupted deploy did not burn its version: the same bundle deploys now.
          assert.equal((await tv.vault.deploy(bundle4)).version, 4);
          assert.equal((await tv.vault.verify()).ok, true);
        }
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }

  test('killed at random moments of a larger deploy', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const outcomes: string[] = [];
    for (const delay of [0, 20, 60, 120, 200, 280, 330, 380]) {
      const { tv, bundle4 } = await vaultAtThree(`crash-rnd-${delay}`, bigTree());
      try {
        const jitter = Math.floor(Math.random() * 10);
        const r = await runChild([tv.path, 'deploy', bundle4], {}, { killAfterReadyMs: delay + jitter });
        const version = await assertRecovered(tv, [3, 4]);
        outcomes.push(`${delay + jitter}ms:${r.killed && !r.lines.includes('done') ? 'killed' : 'finished'}->v${version}`);
      } finally {
        await closeDeps(tv.deps);
      }
    }
    t.diagnostic(outcomes.join(' '));
  });

  for (const step of ['verified', 'swapped']) {
    test(`killed at rollback step "${step}"`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const { tv, bundle4 } = await vaultAtThree(`crash-rb-${step}`);
      try {
        await tv.vault.deploy(bundle4);
        const r = await runChild([tv.path, 'rollback'], { SENTINEL_TEST_PAUSE_AT: step }, { killOn: `paused:${step}` });
        assert.ok(r.killed, `child was not killed at ${step}: ${r.lines.join('|')} ${r.stderr}`);
        await assertRecovered(tv, [step === 'swapped' ? 3 : 4]);
        assert.equal((await tv.vault.status()).highestVersion, 4, 'a rollback never lowers the highest version');
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }

  for (const step of ['staged', 'before-swap', 'swapped', 'pruned']) {
    test(`killed at heal step "${step}"`, async (t) => {
      if (needs(t, isRoot(), 'root')) return;
      const tv = await makeVault(`crash-heal-${step}`);
      try {
        await tv.vault.deploy((await tv.bundle(1)).path);
        const f = join(liveTree(tv.path), 'VERSION');
        run('chattr', ['-i', f]);
        writeFileSync(f, 'v0\n');
        const r = await runChild([tv.path, 'heal'], { SENTINEL_TEST_PAUSE_AT: step }, { killOn: `paused:${step}` });
        assert.ok(r.killed, `child was not killed at ${step}: ${r.lines.join('|')} ${r.stderr}`);
        const vault = await openVault(tv.path, tv.deps);
        const v = await vault.verify();
        if (COMMITTED.has(step)) assert.deepEqual(v.problems, [], 'heal committed: intact');
        else {
          assert.equal(v.ok, false, 'heal not committed: the tampered release is still live');
          await vault.heal();
        }
        await assertRecovered(tv, [1]);
        const kept = (await (await openVault(tv.path, tv.deps)).status()).releases;
        assert.deepEqual(kept.map((r) => r.live), [true], `only the live copy of the healed release is kept: ${kept.map((r) => r.releaseDir).join(', ')}`);
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }
});
