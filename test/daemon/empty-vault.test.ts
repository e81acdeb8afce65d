// A vault fresh from `vault init` has no release: the daemon must start on it (README: init, then enable
// the service), say it is waiting, take the first deploy, and still treat a later loss of `current` as tamper.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sendRequest } from '../../src/adapters/control-client.js';
import { createLogger } from '../../src/adapters/logger.js';
import { encodePublicKey } from '../../src/core/keys.js';
import { startDaemon } from '../../src/daemon/main.js';
import { needs, isRoot } from '../helpers/env.js';
import { bundleFactory } from '../helpers/daemon-harness.js';
import { cleanupAll, makeVault, tempDir } from '../helpers/vault-factory.js';

const auditLogs: string[] = [];
after(() => {
  for (const p of auditLogs) spawnSync('chattr', ['-a', p]); // the audit log is append-only (+a)
  cleanupAll();
});

test('daemon on a vault with no release: ready and waiting, first deploy through the socket, then verified', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const tv = await makeVault('empty-d');
  const dir = tempDir('empty-d-files');
  const pubPath = join(dir, 'release.pub');
  writeFileSync(pubPath, encodePublicKey(tv.keys[0]!.public));
  mkdirSync(join(dir, 'state'), { recursive: true });
  const socket = join(dir, 'run', 'sentinel.sock');
  const configPath = join(dir, 'sentinel.json');
  const auditPath = join(dir, 'log', 'audit.log');
  auditLogs.push(auditPath);
  writeFileSync(configPath, JSON.stringify({ vault: { path: tv.path, trust: [pubPath], flagTracer: 'off' }, control: { socket }, audit: { path: auditPath }, stateDir: join(dir, 'state') }));
  const lines: { level: number; msg: string; event?: string; ok?: boolean }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as (typeof lines)[number]);
      cb();
    },
  });
  const handle = await startDaemon({ configFile: configPath, signals: false, logger: createLogger('info', sink) });
  try {
    assert.equal(handle.sentinel.lastVerify?.empty, true, 'the empty vault was recognised');
    const startVerify = lines.find((l) => l.event === 'verify');
    assert.equal(startVerify?.ok, true, `the start-up verify of an empty vault is not a failure: ${JSON.stringify(startVerify)}`);
    assert.match(startVerify.msg, /waiting for the first signed release/);
    assert.deepEqual(lines.filter((l) => /violated/.test(l.msg) || l.level >= 40), [], 'nothing at start says "violated", nor warns');
    const tamper = await handle.sentinel.checkTamper('test');
    assert.equal(tamper.tampered, false, 'an empty vault is not a tamper');
    const verify = (await sendRequest(socket, { op: 'verify' }, { timeoutMs: 10_000 })) as { ok: boolean; result?: { ok: boolean; problems: { message: string }[] } };
    assert.equal(verify.result?.ok, false, 'verify itself still says there is no release');
    const b1 = await bundleFactory(tv)(1);
    const reply = (await sendRequest(socket, { op: 'deploy', bundlePath: b1.path }, { timeoutMs: 30_000 })) as { ok: boolean };
    assert.equal(reply.ok, true, `first deploy accepted: ${JSON.stringify(reply)}`);
    const after1 = (await sendRequest(socket, { op: 'verify' }, { timeoutMs: 10_000 })) as { result?: { ok: boolean; version: number } };
    assert.equal(after1.result?.ok, true);
    assert.equal(after1.result?.version, 1);
    assert.notEqual(handle.sentinel.lastVerify?.empty, true, 'no longer empty once a release is live');
  } finally {
    await handle.stop('test');
  }
});
