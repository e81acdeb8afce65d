// The daemon's start after a crash marker (a pid in staging/.lock): its open and start-up verify only
// look, so what is unsealed is named in a tamper record (with the interrupted operation), and its
// heal, a write operation, recovers (re-seals) and heals; the daemon then serves an intact vault.
// After a genuine crash (a deploy killed with SIGKILL before and after its swap) and after a forged
// marker over lifted flags, with real chattr.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/adapters/logger.js';
import { startDaemon } from '../../src/daemon/main.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles } from '../helpers/daemon-harness.js';
import { closeDeps, liveTree, makeVault, run, tempDir } from '../helpers/vault-factory.js';
import { encodePublicKey } from '../../src/core/keys.js';
import { bundleFactory } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');

interface Rec {
  kind: string;
  problems?: { code: string; path: string }[];
}

const records = (auditPath: string): Rec[] => readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);

function deployKilledAt(vault: string, bundle: string, step: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, vault, 'deploy', bundle], { env: { ...process.env, SENTINEL_TEST_PAUSE_AT: step, SENTINEL_TEST_NOW: new Date().toISOString() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let killed = false;
    const guard = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`the crash child did not pause at ${step} within 30 s: ${out}`));
    }, 30_000);
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!killed && out.split('\n').includes(`paused:${step}`)) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.on('exit', () => {
      clearTimeout(guard);
      if (killed) resolve();
      else reject(new Error(`the crash child exited before ${step}: ${out}`));
    });
  });
}

/** Starts the daemon on the prepared files; it must come up. Returns a stop function. */
async function startOn(configPath: string): Promise<() => Promise<void>> {
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const handle = await startDaemon({ configFile: configPath, env: {}, signals: false, logger: createLogger('debug', sink) });
  return () => handle.stop('test');
}

for (const [step, version] of [['before-swap', 1], ['swapped', 2]] as const) {
  test(`after a deploy killed at "${step}" the daemon comes up: the interrupted operation is recorded, its heal recovers, v${version} is live and intact`, { timeout: 120_000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const f = await prepareDaemonFiles(`crash-start-${step}`);
    try {
      const b2 = await f.bundle(2);
      await deployKilledAt(f.tv.path, b2.path, step);
      assert.notEqual(readFileSync(join(f.tv.path, 'staging', '.lock'), 'utf8'), '', 'the killed deploy left its marker');
      const stop = await startOn(f.configPath);
      try {
        const recs = records(f.auditPath);
        const tamper = recs.find((r) => r.kind === 'tamper');
        assert.ok(tamper !== undefined, `a tamper record at start: ${recs.map((r) => r.kind).join(', ')}`);
        assert.ok((tamper.problems ?? []).some((p) => p.path === 'staging/.lock'), `it names the interrupted operation: ${JSON.stringify(tamper.problems)}`);
        assert.ok(recs.some((r) => r.kind === 'heal'), 'and the heal that recovered it');
        const v = await f.tv.vault.verify();
        assert.deepEqual(v.problems, [], 'intact after the start');
        assert.equal(v.version, version);
        assert.equal(readFileSync(join(f.tv.path, 'staging', '.lock'), 'utf8'), '', 'the marker is gone');
      } finally {
        await stop();
      }
    } finally {
      await closeDeps(f.tv.deps);
    }
  });
}

test('a forged marker over lifted flags: the daemon start names them in its tamper record, then heals', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const f = await prepareDaemonFiles('crash-start-forged');
  try {
    const release = readlinkSync(join(f.tv.path, 'current'));
    const file = join(liveTree(f.tv.path), 'VERSION');
    run('chattr', ['-i', join(f.tv.path, release), file]);
    writeFileSync(join(f.tv.path, 'staging', '.lock'), '4194000\n');
    const stop = await startOn(f.configPath);
    try {
      const tamper = records(f.auditPath).find((r) => r.kind === 'tamper');
      assert.ok(tamper !== undefined, 'a tamper record at start');
      const unsealed = (tamper.problems ?? []).filter((p) => p.code === 'unsealed').map((p) => p.path);
      assert.ok(unsealed.some((p) => p.endsWith('VERSION')), `the lifted file is named: ${unsealed.join(', ')}`);
      assert.ok(unsealed.some((p) => p === release || p.endsWith(release)), `the lifted release directory is named: ${unsealed.join(', ')}`);
      assert.deepEqual((await f.tv.vault.verify()).problems, [], 'healed');
    } finally {
      await stop();
    }
  } finally {
    await closeDeps(f.tv.deps);
  }
});

test('after the first deploy into a fresh vault is killed at "staged", the daemon comes up waiting for the first release: its heal recovered, nothing was live to heal', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const tv = await makeVault('crash-start-fresh');
  const tempDirOf = tempDir('crash-start-fresh-d');
  try {
    const dir = tempDirOf;
    const pubPath = join(dir, 'release.pub');
    writeFileSync(pubPath, encodePublicKey(tv.keys[0]!.public));
    mkdirSync(join(dir, 'state'), { recursive: true });
    const auditPath = join(dir, 'log', 'audit.log');
    const configPath = join(dir, 'sentinel.json');
    writeFileSync(configPath, JSON.stringify({ vault: { path: tv.path, trust: [pubPath], flagTracer: 'off' }, control: { socket: join(dir, 'run', 'sentinel.sock') }, audit: { path: auditPath }, stateDir: join(dir, 'state') }));
    const b1 = await bundleFactory(tv)(1);
    await deployKilledAt(tv.path, b1.path, 'staged');
    assert.notEqual(readFileSync(join(tv.path, 'staging', '.lock'), 'utf8'), '', 'the killed deploy left its marker');
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const handle = await startDaemon({ configFile: configPath, env: {}, signals: false, logger: createLogger('debug', sink) });
    try {
      assert.equal(handle.sentinel.lastVerify?.empty, true, 'the vault is fresh again: waiting for its first release');
      assert.equal(readFileSync(join(tv.path, 'staging', '.lock'), 'utf8'), '', 'the marker is gone');
    } finally {
      await handle.stop('test');
    }
  } finally {
    // The audit log is append-only (+a): lifted so the test's files can be removed, also after a failed start.
    spawnSync('chattr', ['-f', '-a', join(tempDirOf, 'log', 'audit.log')]);
    await closeDeps(tv.deps);
  }
});
