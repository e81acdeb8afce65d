// The audit log is watched like the vault: its +a lifted, the file deleted or replaced while the daemon runs is a
// tamper event and the log is put back from the file the daemon holds open; a log lost while the daemon was stopped
// starts a new chain that continues the last record the daemon knew, so `sentinel audit verify` shows the loss.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { sha256Hex, verifyAuditFile } from '../../src/adapters/audit-log.js';
import { defaultFlagStore, FS_APPEND_FL } from '../../src/adapters/flags.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { createLogger } from '../../src/adapters/logger.js';
import { AUDIT_GENESIS, chainHash, formatAuditLine } from '../../src/core/audit.js';
import { startDaemon } from '../../src/daemon/main.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const flags = defaultFlagStore();

interface Status {
  counters: { auditTampers: number };
  watchdog: { healthy: boolean };
}

async function status(socket: string): Promise<Status> {
  return ((await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: Status }).result;
}

function records(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function appendOnly(path: string): Promise<boolean> {
  return ((await flags.getFlags(path)) & FS_APPEND_FL) !== 0;
}

test('audit log while the daemon runs: +a lifted, deleted, replaced — each a tamper event, the log put back whole', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +a)')) return;
  const d = await startTestDaemon('auditguard', { limits: { flagAuditIntervalMs: 200 } });
  const path = d.auditPath;
  try {
    const tampers = (n: number): Promise<Status> =>
      waitFor(`audit tamper number ${String(n)}`, 10_000, async () => {
        const s = await status(d.socket);
        return s.counters.auditTampers >= n ? s : null;
      });

    spawnSync('chattr', ['-a', path]);
    await tampers(1);
    await waitFor('+a set again', 5_000, async () => ((await appendOnly(path)) ? true : null));

    const before = records(path).length;
    spawnSync('chattr', ['-a', path]);
    rmSync(path);
    await tampers(2);
    await waitFor('the log back at its path, +a', 5_000, async () => (existsSync(path) && (await appendOnly(path)) ? true : null));
    assert.ok(records(path).length >= before, 'the history is back, not a new log');

    spawnSync('chattr', ['-a', path]);
    rmSync(path);
    const forged = `${formatAuditLine({ seq: 1, time: new Date(), kind: 'start', prev: AUDIT_GENESIS, fields: { forged: true } })}\n`;
    writeFileSync(path, forged);
    await tampers(3);
    await waitFor('the daemon log back in place of the forged one', 5_000, () => (records(path)[0]?.forged === undefined ? true : null));
    const aside = readdirSync(dirname(path)).filter((n) => n.startsWith(`${basename(path)}.replaced-`));
    assert.equal(aside.length, 1, `the forged file is kept aside: ${readdirSync(dirname(path)).join(', ')}`);
    assert.equal(readFileSync(join(dirname(path), aside[0]!), 'utf8'), forged);
    assert.equal((await status(d.socket)).watchdog.healthy, true);
  } finally {
    await d.handle.stop('test');
  }
  const state = await verifyAuditFile(path);
  assert.ok(state.lines > 4);
  const tamperRecords = records(path).filter((r) => r.kind === 'tamper' && r.target === 'audit-log');
  assert.deepEqual(
    tamperRecords.map((r) => r.problem),
    ['append-only flag lifted', 'deleted', 'replaced'],
  );
  assert.equal(records(path)[0]?.kind, 'start', 'the chain still begins with the first start record');
});

test('audit log lost while the daemon was stopped: the next start continues the chain from the last record it wrote; audit verify shows the loss', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +a)')) return;
  const files = await prepareDaemonFiles('auditlost');
  const start = () => startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  let handle = await start();
  await handle.stop('test');
  const old = readFileSync(files.auditPath, 'utf8').trim().split('\n');
  const last = old[old.length - 1]!;
  const lastSeq = (JSON.parse(last) as { seq: number }).seq;

  const kept = join(files.dir, 'audit.log.kept');
  copyFileSync(files.auditPath, kept);
  spawnSync('chattr', ['-a', files.auditPath]);
  rmSync(files.auditPath);
  handle = await start();
  await handle.stop('test');
  let recs = records(files.auditPath);
  assert.equal(recs[0]?.kind, 'chain', 'a new log begins with a chain record');
  assert.equal(recs[0]?.seq, lastSeq + 1, 'numbering continues after the last record the daemon wrote');
  assert.equal(recs[0]?.prev, chainHash(last, sha256Hex), 'and chains to its hash');
  const alone = spawnSync(process.execPath, [cli, 'audit', 'verify', files.auditPath], { encoding: 'utf8' });
  assert.equal(alone.status, 1, `a continuation file alone shows the lost history: ${alone.stdout}`);
  assert.match(alone.stderr, /audit-chain/);
  assert.match(alone.stderr, new RegExp(`${String(lastSeq)} earlier record`));
  const both = spawnSync(process.execPath, [cli, 'audit', 'verify', kept, files.auditPath, '--json'], { encoding: 'utf8' });
  assert.equal(both.status, 0, `the earlier file and its continuation verify as one chain: ${both.stderr}`);
  assert.equal((JSON.parse(both.stdout) as { lines: number }).lines, old.length + recs.length);

  // Replaced while stopped by a shorter chain that does not hold the last record: moved aside, chain continued.
  const continued = readFileSync(files.auditPath, 'utf8').trim().split('\n');
  const head = continued[continued.length - 1]!;
  spawnSync('chattr', ['-a', files.auditPath]);
  writeFileSync(files.auditPath, `${formatAuditLine({ seq: 1, time: new Date(), kind: 'start', prev: AUDIT_GENESIS })}\n`);
  handle = await start();
  await handle.stop('test');
  recs = records(files.auditPath);
  assert.equal(recs[0]?.kind, 'chain');
  assert.equal(recs[0]?.prev, chainHash(head, sha256Hex));
  assert.ok(recs.some((r) => r.kind === 'tamper' && r.target === 'audit-log'), 'the replacement is a tamper record');
  assert.equal(readdirSync(dirname(files.auditPath)).filter((n) => n.includes('.replaced-')).length, 1);
});
