// `sentinel daemon` as a real child process speaking sd_notify to a real datagram listener: READY=1 only after the
// vault was verified, STATUS= and WATCHDOG=1, SIGHUP reload (a bad new config keeps the old one), SIGTERM during a
// deploy: STOPPING=1, the deploy finished or never started, socket removed, exit 0, vault verifies.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sendRequest } from '../../src/adapters/control-client.js';
import { parseNotify } from '../../src/core/sd-notify.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { openVault } from '../../src/vault/index.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startNotifyListener, waitFor } from '../helpers/daemon-harness.js';
import { makeDeps, closeDeps, type TreeSpec } from '../helpers/vault-factory.js';
import { spawnSync } from 'node:child_process';

after(() => cleanupDaemonFiles());
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const hasPython = spawnSync('python3', ['-c', 'import socket'], { encoding: 'utf8' }).status === 0;

function bigTree(tag: string, megabytes: number): TreeSpec {
  const tree: TreeSpec = [{ type: 'dir', path: 'data' }];
  for (let i = 0; i < megabytes; i++) tree.push({ type: 'file', path: `data/blob-${String(i)}.bin`, content: Buffer.alloc(1024 * 1024, `${tag}${String(i)}`) });
  return tree;
}

test('daemon process: READY after verify, STATUS, WATCHDOG pings, SIGHUP reload, SIGTERM mid-deploy exits 0 with an intact vault', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  if (needs(t, hasPython, 'python3')) return;
  const files = await prepareDaemonFiles('life');
  mkdirSync(join(files.dir, 'notify'), { recursive: true });
  const listener = await startNotifyListener(join(files.dir, 'notify', 'notify.sock'));
  const child = spawn(process.execPath, [cli, 'daemon', '--config', files.configPath], {
    env: { ...process.env, NOTIFY_SOCKET: listener.address, WATCHDOG_USEC: '400000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: { event?: string; ok?: boolean; msg?: string }[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => logs.push(JSON.parse(l) as { event?: string }));
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    const ready = await listener.next((d) => d.startsWith('READY=1'), 30_000);
    const fields = parseNotify(ready);
    assert.match(fields.get('STATUS') ?? '', /^vault v1 \S+ intact/);
    assert.equal(fields.get('MAINPID'), String(child.pid));
    await waitFor('the ready log line', 5_000, () => logs.find((l) => l.event === 'ready') ?? null);
    const verifyIdx = logs.findIndex((l) => l.event === 'verify' && l.ok === true);
    const readyIdx = logs.findIndex((l) => l.event === 'ready');
    assert.ok(verifyIdx >= 0 && verifyIdx < readyIdx, 'the vault was verified before READY=1');
    await listener.next((d) => parseNotify(d).get('WATCHDOG') === '1', 5_000);

    writeFileSync(files.configPath, '{ "vault": { "path": 7 } }');
    child.kill('SIGHUP');
    await waitFor('reload rejected', 10_000, () => logs.find((l) => l.event === 'reload' && l.ok === false) ?? null);
    const status1 = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { ok: boolean; result: { vault: { onTamper: string } } };
    assert.equal(status1.ok, true, 'still serving with the old config');
    assert.equal(status1.result.vault.onTamper, 'heal');
    const mark = listener.datagrams.length;
    writeFileSync(files.configPath, JSON.stringify({ ...files.config, vault: { ...(files.config.vault as object), onTamper: 'alert' } }));
    child.kill('SIGHUP');
    await listener.next((d) => d.startsWith('RELOADING=1'), 10_000, mark);
    await listener.next((d) => d.startsWith('READY=1'), 10_000, mark);
    const status2 = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { vault: { onTamper: string } } };
    assert.equal(status2.result.vault.onTamper, 'alert', 'the valid new config took effect');

    const big = await files.tv.bundle(2, bigTree('v2', 48), { created: new Date(Date.now() - 60_000), expires: new Date(Date.now() + 86_400_000) });
    const deploy = sendRequest(files.socket, { op: 'deploy', bundlePath: big.path }, { timeoutMs: 60_000 }) as Promise<{ ok: boolean; error?: { code: string } }>;
    await waitFor('deploy under way', 10_000, async () => {
      const s = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { daemon: { busyWith: string | null } } };
      return s.result.daemon.busyWith?.startsWith('deploy') === true ? true : null;
    });
    child.kill('SIGTERM');
    const reply = await deploy;
    const code = await exited;
    assert.equal(code, 0, `clean exit after SIGTERM; stderr: ${stderr}`);
    await listener.next((d) => d.startsWith('STOPPING=1'), 5_000);
    assert.equal(reply.ok, true, `the in-flight deploy was finished before exit: ${JSON.stringify(reply)}`);
    assert.equal(existsSync(files.socket), false, 'control socket removed');
    const deps = makeDeps({ now: () => new Date() });
    try {
      const vault = await openVault(files.tv.path, deps);
      const report = await vault.verify();
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.version, 2, 'the finished deploy is live and sealed');
    } finally {
      await closeDeps(deps);
    }
    const audit = readFileSync(files.auditPath, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind);
    assert.equal(audit[0], 'start');
    assert.equal(audit[audit.length - 1], 'stop');
    assert.ok(audit.includes('reload'));
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    listener.close();
  }
});
