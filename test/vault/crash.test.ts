// Crash consistency (invariant 3): a child process deploying is killed with SIGKILL at every deploy
// step and at random moments; a look at the vault afterwards (`openVault`, `verify`) names the
// interrupted operation and changes nothing (it re-seals nothing, so a forged crash marker cannot hide
// a lifted flag); after `recover` the vault verifies, serves exactly the old or the new release (never
// a mix), has no leftovers, and is sealed. Same for heal and rollback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { openVault } from '../../src/vault/index.js';
import { acquireLock } from '../../src/vault/lock.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run, sampleTree, snapshot } from '../helpers/vault-factory.js';
import { stagingLeftovers } from '../helpers/vault-factory.js';
import type { TestVault, TreeSpec } from '../helpers/vault-factory.js';
import type { VerifyScope } from '../../src/vault/index.js';

after(cleanupAll);

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');
const DEPLOY_STEPS = ['verified', 'staged', 'sealed-release', 'before-swap', 'swapped', 'highest-updated', 'pruning', 'pruned'];
const COMMITTED = new Set(['swapped', 'highest-updated', 'pruning', 'pruned']);

/**
 * Starts the child; kills it with SIGKILL once it prints `killOn` (after `beforeKill` has run, whose
 * failure then fails the run) or `killAfterReadyMs` after "ready". `onLine` sees every line.
 */
function runChild(
  args: string[],
  env: Record<string, string>,
  opts: { killOn?: string; killAfterReadyMs?: number; beforeKill?: () => Promise<void>; onLine?: (line: string) => void },
): Promise<{ killed: boolean; lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let killed = false;
    let failure: Error | null = null;
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
        opts.onLine?.(line);
        if (opts.killOn !== undefined && line === opts.killOn) {
          if (opts.beforeKill === undefined) kill();
          else
            opts.beforeKill().then(kill, (e: unknown) => {
              failure = e instanceof Error ? e : new Error(`beforeKill failed: ${JSON.stringify(e)}`);
              kill();
            });
        }
        if (opts.killAfterReadyMs !== undefined && line === 'ready') setTimeout(kill, opts.killAfterReadyMs);
      }
    });
    p.on('exit', () => {
      clearTimeout(guard);
      if (failure !== null) reject(failure);
      else resolve({ killed, lines, stderr });
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

/** Whether the crash marker (a pid in staging/.lock) says an exclusive holder died mid-operation. */
function markerLeft(tv: TestVault): boolean {
  return readFileSync(join(tv.path, 'staging', '.lock'), 'utf8') !== '';
}

/**
 * After a crash that left its marker: a look (openVault, verify) reports the interrupted operation,
 * saying what to run, and changes nothing (no flag re-sealed, no leftover removed, the marker kept);
 * `recover` then finishes or undoes it. Returns the look's other problems.
 */
async function assertLookNamesCrash(tv: TestVault, scope: VerifyScope = 'all'): Promise<string[]> {
  assert.ok(markerLeft(tv), 'the killed holder left its crash marker');
  const before = snapshot(tv.path);
  const look = await openVault(tv.path, tv.deps);
  const seen = await look.verify({ scope });
  assert.equal(seen.ok, false, 'a vault with an interrupted operation is not reported intact');
  const marker = seen.problems.filter((p) => p.path === 'staging/.lock');
  assert.equal(marker.length, 1, `the interrupted operation is named once: ${JSON.stringify(seen.problems)}`);
  assert.match(marker[0]!.message, /interrupted/);
  assert.match(marker[0]!.message, /sentinel vault recover/, 'and says what to run');
  const st = (await look.status()) as unknown as { interrupted?: boolean };
  assert.equal(st.interrupted, true, 'status says an operation was interrupted');
  assert.deepEqual(snapshot(tv.path), before, 'the look changed nothing (flags, leftovers, the marker)');
  return seen.problems.filter((p) => p.path !== 'staging/.lock').map((p) => `${p.code}:${p.path}`);
}

/** After a crash: a look names it (when its marker was left), `recover` runs, then the vault must be intact at exactly `old` or `new`. */
async function assertRecovered(tv: TestVault, allowed: number[]): Promise<number> {
  if (markerLeft(tv)) {
    await assertLookNamesCrash(tv);
    await (await openVault(tv.path, tv.deps)).recover();
  }
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
        assert.ok(markerLeft(tv), `a deploy killed at ${step} leaves its crash marker`);
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
        assert.ok(markerLeft(tv), `a rollback killed at ${step} leaves its crash marker`);
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
        // The live scope: after a committed heal the tampered copy it replaced is still kept (recovery removes it).
        const others = await assertLookNamesCrash(tv, 'live');
        if (COMMITTED.has(step)) assert.deepEqual(others, [], 'heal committed: nothing but the interrupted operation');
        else assert.ok(others.some((p) => p.endsWith('VERSION')), `heal not committed: the tampered release is still live: ${others.join(', ')}`);
        // A heal (the daemon's, `vault heal`) recovers first, as every write operation does, then heals.
        const vault = await openVault(tv.path, tv.deps);
        await vault.heal();
        await assertRecovered(tv, [1]);
        const kept = (await (await openVault(tv.path, tv.deps)).status()).releases;
        assert.deepEqual(kept.map((r) => r.live), [true], `only the live copy of the healed release is kept: ${kept.map((r) => r.releaseDir).join(', ')}`);
      } finally {
        await closeDeps(tv.deps);
      }
    });
  }
});

describe('the tail of a deploy (after its result, under the vault lock)', () => {
  test('the result comes before pruning, the lock is held through it, a concurrent deploy waits, and a crash in the middle of pruning leaves a consistent vault', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const { tv, bundle4 } = await vaultAtThree('crash-tail');
    try {
      const oldest = (await tv.vault.status()).releases[0]!.releaseDir;
      const bundle5 = (await tv.bundle(5)).path;
      const lock = join(tv.path, 'staging', '.lock');
      let waiter: Promise<{ killed: boolean; lines: string[]; stderr: string }> | null = null;
      const a = await runChild([tv.path, 'deploy', bundle4], { SENTINEL_TEST_PAUSE_AT: 'pruning' }, {
        killOn: 'paused:pruning',
        beforeKill: async () => {
          // Paused in the middle of pruning: v4 is live, v1 is moved out of releases/ but not yet deleted.
          assert.equal(readlinkSync(join(tv.path, 'current')).startsWith('releases/r00000004-'), true, 'the new release is live');
          assert.equal(readdirSync(join(tv.path, 'releases')).includes(oldest), false, 'the pruned release is moved out');
          assert.ok(stagingLeftovers(tv.path).some((n) => n.startsWith(`trash-${oldest}-`)), 'and not yet deleted');
          // The lock is still held: taken now, it is refused, and so is a second deploy that does not wait.
          await assert.rejects(acquireLock(lock, { timeoutMs: 0 }), (e: Error & { code?: string }) => e.code === 'busy');
          const busy = await runChild([tv.path, 'deploy', bundle5], { SENTINEL_TEST_LOCK_TIMEOUT_MS: '0' }, {});
          assert.match(busy.stderr, /error:busy/, `a deploy that does not wait is refused while the tail runs: ${busy.lines.join('|')} ${busy.stderr}`);
          // A deploy that waits for the lock, started now, goes on once the holder is gone.
          await new Promise<void>((ready) => {
            waiter = runChild([tv.path, 'deploy', bundle5], {}, { onLine: (line) => line === 'ready' && ready() });
          });
        },
      });
      assert.ok(a.killed, `child was not killed in its tail: ${a.lines.join('|')} ${a.stderr}`);
      assert.deepEqual(a.lines, ['ready', 'live:4', 'paused:pruning'], 'the result is reported before the tail');
      assert.ok(waiter !== null);
      const b = await (waiter as Promise<{ killed: boolean; lines: string[]; stderr: string }>);
      assert.deepEqual(b.lines, ['ready', 'live:5', 'done'], `the waiting deploy finished: ${b.stderr}`);
      assert.equal(await assertRecovered(tv, [5]), 5);
      const kept = (await tv.vault.status()).releases.map((r) => r.version);
      assert.deepEqual(kept, [3, 4, 5], 'the interrupted prune is finished by the next deploy');
      assert.equal(existsSync(join(tv.path, 'releases', oldest)), false);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
