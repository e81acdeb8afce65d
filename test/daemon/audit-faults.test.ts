// The daemon's audit log on a really full disk (a tmpfs of its own): a deploy that cannot be audited is refused
// and changes nothing; a heal goes on and says it is not audited yet; the held records follow a `gap` record once
// there is room, the chain verifies, and the daemon is healthy again.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { verifyAuditFile } from '../../src/adapters/audit-log.js';
import { daemonStatus, healthyThenDeploys, type Reply } from '../helpers/audit-outage.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';
import { isSentinelError } from '../../src/core/errors.js';
import { canMountTmpfs, mountTmpfs, unmountAll } from '../helpers/tmpfs.js';

after(() => {
  unmountAll();
  cleanupDaemonFiles();
});
const tmpfsOk = canMountTmpfs();


function records(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('full disk under the audit log: deploy refused io naming the log, vault unchanged; heal done but not yet audited; gap + held records once there is room', { timeout: 60_000 }, async (t) => {
  if (needs(t, tmpfsOk, 'root and a mountable tmpfs')) return;
  const fs = mountTmpfs('daemon-audit', 256 * 1024);
  const auditPath = join(fs.path, 'audit.log');
  const d = await startTestDaemon('auditfull', { audit: { path: auditPath }, limits: { auditRetryMs: 100 } });
  try {
    const b2 = await d.bundle(2);
    fs.fill();
    // The log's last page still has room for a few lines: refusals of a missing bundle (each audited) use it up.
    const missing = join(d.dir, 'no-such.bundle');
    await waitFor('the audit log to run out of room', 20_000, async () => {
      await sendRequest(d.socket, { op: 'deploy', bundlePath: missing }, { timeoutMs: 10_000 });
      return (await daemonStatus(d.socket)).audit.writable ? null : true;
    });
    const before = (await daemonStatus(d.socket)).counters;
    const refused = (await sendRequest(d.socket, { op: 'deploy', bundlePath: b2.path }, { timeoutMs: 30_000 })) as Reply<unknown>;
    assert.equal(refused.ok, false, `a deploy that cannot be audited was committed: ${JSON.stringify(refused)}`);
    assert.equal(refused.error?.code, 'io');
    assert.equal(refused.error?.where, auditPath);
    const s = await daemonStatus(d.socket);
    assert.equal(s.vault.version, 1, 'the vault is unchanged');
    assert.equal(s.watchdog.healthy, false);
    assert.match(s.watchdog.reason ?? '', /audit log/);
    assert.equal(s.audit.writable, false);
    assert.ok(s.audit.held > 0, 'the records of the refused deploy are held');
    assert.equal(s.counters.rejects, before.rejects + 1, 'a refusal for a full disk is a reject');
    assert.equal(s.counters.rejectsByCode.io, (before.rejectsByCode.io ?? 0) + 1);

    const healed = (await sendRequest(d.socket, { op: 'heal' }, { timeoutMs: 30_000 })) as Reply<{ audited: boolean; version: number }>;
    assert.equal(healed.ok, true, JSON.stringify(healed));
    assert.equal(healed.result?.audited, false, 'the heal went live and says that it is not audited yet');

    fs.free();
    await healthyThenDeploys(d.socket, b2.path, 'healthy again once the disk has room', 10_000);
  } finally {
    await d.handle.stop('test');
  }
  assert.ok((await verifyAuditFile(auditPath)).lines > 0, 'the chain verifies');
  const recs = records(auditPath);
  const gap = recs.findIndex((r) => r.kind === 'gap');
  assert.ok(gap > 0, 'a gap record says the log could not be written');
  assert.ok(Number(recs[gap]!.held) > 0);
  const late = recs.slice(gap + 1);
  assert.ok(late.some((r) => r.kind === 'reject' && r.code === 'io' && r.bundle !== undefined), 'the refused deploy is recorded after the gap');
  assert.ok(late.some((r) => r.kind === 'heal'), 'the heal is recorded after the gap');
  const deploys = recs.filter((r) => r.kind === 'deploy');
  assert.deepEqual(deploys.map((r) => r.version), [2], 'only the deploy done after the disk had room');
});

test('an audit path under a regular file fails start naming audit.path; a state directory under one names stateDir', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('auditpath');
  const regular = join(files.dir, 'plain-file');
  writeFileSync(regular, 'not a directory\n');
  const run = async (extra: Record<string, unknown>): Promise<unknown> => {
    writeFileSync(files.configPath, JSON.stringify({ ...files.config, ...extra }));
    return startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  };
  await assert.rejects(run({ audit: { path: join(regular, 'audit.log') } }), (e) => isSentinelError(e) && (e.where ?? '').startsWith('audit.path: ') && (e.where ?? '').includes(regular));
  await assert.rejects(run({ stateDir: join(regular, 'state') }), (e) => isSentinelError(e) && (e.where ?? '').startsWith('stateDir: '));
});
