// The `sentinel` commands that reach past one vault, end to end through the real compiled CLI as
// root: sign-and-deploy and deploy --socket through a real daemon, doctor, demo (the vault
// commands: commands.test.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { CLI, assertFails, assertOk, closeInProcessCli, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

const root = isRoot();

after(() => cleanupAll());
after(() => closeInProcessCli());

describe('cli: --socket forms through a real daemon', () => {
  it('sign-and-deploy --socket picks the next version; deploy --socket of an older bundle is refused with one line', async (t) => {
    if (needs(t, root, 'root')) return;
    const dir = tempDir('cli-socket');
    const k = testKey('cli-socket');
    const keys = writeKeyFiles(dir, 'release', k);
    const vault = join(dir, 'vault');
    const socket = join(dir, 'sentinel.sock');
    writeTree(join(dir, 'src'), sampleTree('sock'));
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'cli-socket']));
    const old = join(dir, 'v1.bundle');
    assertOk(await sentinel(['sign', join(dir, 'src'), '--key', keys.key, '--vault', vault, '--version', '1', '--out', old]));
    assertOk(await sentinel(['deploy', old, '--vault', vault]));
    const daemon = spawn(process.execPath, [CLI, 'daemon', '--vault', vault, '--trust', keys.pub, '--socket', socket, '--state-dir', join(dir, 'state'), '--audit-log', join(dir, 'audit.log'), '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`daemon not ready within 20 s:\n${log}`)), 20_000);
        daemon.stdout.setEncoding('utf8').on('data', (d: string) => {
          log += d;
          if (log.includes('"event":"ready"')) {
            clearTimeout(timer);
            resolve();
          }
        });
        daemon.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
        daemon.on('exit', (c) => {
          clearTimeout(timer);
          reject(new Error(`daemon exited with ${String(c)} before ready:\n${log}`));
        });
      });
      const r = await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--socket', socket, '--json']);
      assertOk(r);
      const out = JSON.parse(r.stdout) as { ok: boolean; version: number; via: string };
      assert.deepEqual([out.ok, out.version, out.via], [true, 2, 'socket']);
      assertFails(await sentinel(['deploy', old, '--socket', socket]), 'rollback');
      const st = await sentinel(['vault', 'status', vault, '--json']);
      assert.equal((JSON.parse(st.stdout) as { version: number }).version, 2);
    } finally {
      daemon.removeAllListeners('exit');
      const gone = new Promise((resolve) => daemon.once('close', resolve));
      daemon.kill('SIGTERM');
      await gone;
      spawnSync('chattr', ['-R', '-f', '-a', dir]);
    }
  });
});

describe('cli: doctor and demo', () => {
  it('doctor --json lists every check with ok/missing/degraded, exit 0 here', async (t) => {
    if (needs(t, root, 'root')) return;
    const r = await sentinel(['doctor', '--vault-dir', tmpdir(), '--json']);
    assertOk(r);
    const d = JSON.parse(r.stdout) as { ok: boolean; vaultReady: boolean; checks: { name: string; status: string; detail: string; fix?: string; vault: boolean }[] };
    assert.equal(d.vaultReady, true);
    const names = d.checks.map((c) => c.name);
    for (const n of ['root', 'chattr/lsattr', 'vault filesystem supports +i', 'cgroup v2', 'eBPF engine', 'tracefs', 'systemd as PID 1', 'systemd-notify']) assert.ok(names.includes(n), `doctor checks ${n}`);
    for (const c of d.checks) {
      assert.ok(['ok', 'missing', 'degraded'].includes(c.status), `${c.name}: ${c.status}`);
      if (c.status !== 'ok') assert.ok((c.fix ?? '').length > 0, `${c.name} is ${c.status} and must say how to fix it`);
    }
    const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
    assert.equal(d.checks.find((c) => c.name === 'systemd as PID 1')?.status, pid1 === 'systemd' ? 'ok' : 'degraded');
    const human = await sentinel(['doctor', '--vault-dir', tmpdir()]);
    assertOk(human);
    assert.match(human.stdout, /^ok +root/m);
  });

  it('doctor --vault-dir naming a file: the vault cannot be there, said in the check with its fix, exit 2', async (t) => {
    if (needs(t, root, 'root')) return;
    const file = join(tempDir('doctor-file'), 'phi-engine');
    writeFileSync(file, 'a file, not a directory\n');
    const r = await sentinel(['doctor', '--vault-dir', file, '--json']);
    assert.equal(r.code, 2, r.stderr);
    const d = JSON.parse(r.stdout) as { vaultReady: boolean; checks: { name: string; status: string; detail: string; fix?: string }[] };
    assert.equal(d.vaultReady, false);
    const c = d.checks.find((x) => x.name === 'vault filesystem supports +i');
    assert.ok(c !== undefined);
    assert.equal(c.status, 'missing', JSON.stringify(c));
    assert.match(c.detail, new RegExp(`^${file.replaceAll('/', '\\/')}: not a directory`), c.detail);
    assert.ok((c.fix ?? '').length > 0);
  });

  it('demo runs every step to success and leaves nothing behind', async (t) => {
    if (needs(t, root, 'root')) return;
    const own = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('sentinel-demo-'));
    const beforeDirs = new Set(own());
    const r = await sentinel(['demo'], { timeoutMs: 120_000 });
    assertOk(r);
    assert.match(r.stdout, /demo finished: every step behaved as expected/);
    assert.doesNotMatch(r.stdout, /^\u2718 \[/m);
    assert.match(r.stdout, /EPERM/);
    assert.match(r.stdout, /hash-mismatch/);
    assert.match(r.stdout, /untrusted-key/);
    const steps = r.stdout.split('\n').filter((l) => l.startsWith('\u2714 ['));
    assert.ok(steps.length >= 10, `expected at least 10 passed steps, got ${steps.length}`);
    assert.deepEqual(own().filter((n) => !beforeDirs.has(n)), [], 'demo removes its temporary vault');
  });

  it('a failed demo step is the one error line, with its own code and exit code (no CAP_LINUX_IMMUTABLE: not-permitted, 2)', async (t) => {
    if (needs(t, root, 'root')) return;
    const own = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('sentinel-demo-'));
    const beforeDirs = new Set(own());
    const r = await sentinel(['demo', '--no-recovery'], { prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-linux_immutable'] });
    assertFails(r, 'not-permitted');
    assert.match(r.stdout, /^\u2718 \[2\//m, 'the vault init step is the one that failed');
    assert.deepEqual(own().filter((n) => !beforeDirs.has(n)), [], 'demo removes its temporary vault after a failure too');
  });
});
