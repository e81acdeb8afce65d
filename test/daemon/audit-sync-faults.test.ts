// The daemon's audit log on a filesystem whose flushes fail (a FUSE passthrough that answers fsync
// and fdatasync with EIO, as a disk whose writeback fails does): a record whose flush failed may not
// be on disk, so the log counts as not writable until a record is written and flushed again; a
// deploy is refused meanwhile and changes nothing, and the records are written again after a `gap`
// record that names the error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { verifyAuditFile } from '../../src/adapters/audit-log.js';
import { daemonStatus, healthyThenDeploys, type Reply } from '../helpers/audit-outage.js';
import { needs } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { canMountFaultyFs, mountFaultyFs, unmountAllFaulty } from '../helpers/faulty-fs.js';

after(async () => {
  await unmountAllFaulty();
  cleanupDaemonFiles();
});


test('audit log flushes failing with EIO: not writable, deploy refused io and the vault unchanged; records written again after a gap once flushes work', { timeout: 90_000 }, async (t) => {
  if (needs(t, canMountFaultyFs(), 'root, /dev/fuse and python3-fusepy')) return;
  const fs = await mountFaultyFs('auditsync');
  const auditPath = join(fs.path, 'audit.log');
  const d = await startTestDaemon('auditsync', { audit: { path: auditPath, appendOnly: false }, limits: { auditRetryMs: 100 } });
  const missing = join(d.dir, 'no-such.bundle');
  const b2 = await d.bundle(2);
  try {
    assert.equal((await daemonStatus(d.socket)).audit.writable, true);
    fs.failSync(true);
    // A refusal is audited: its record reaches the file, its flush fails.
    const rejected = (await sendRequest(d.socket, { op: 'deploy', bundlePath: missing }, { timeoutMs: 10_000 })) as Reply<unknown>;
    assert.equal(rejected.ok, false);
    let s = await waitFor('the failed flush to show in status', 10_000, async () => {
      const now = await daemonStatus(d.socket);
      return now.audit.writable ? null : now;
    });
    assert.match(s.audit.error ?? '', /EIO|input\/output error/i, 'status names the flush error');
    assert.equal(s.watchdog.healthy, false);
    assert.match(s.watchdog.reason ?? '', /audit log/);

    const refused = (await sendRequest(d.socket, { op: 'deploy', bundlePath: b2.path }, { timeoutMs: 30_000 })) as Reply<unknown>;
    assert.equal(refused.ok, false, `a deploy whose records cannot be flushed was committed: ${JSON.stringify(refused)}`);
    assert.equal(refused.error?.code, 'io');
    assert.equal(refused.error?.where, auditPath);
    s = await daemonStatus(d.socket);
    assert.equal(s.vault.version, 1, 'the vault is unchanged');

    fs.failSync(false);
    await healthyThenDeploys(d.socket, b2.path, 'healthy again once flushes work', 15_000);
  } finally {
    await d.handle.stop('test');
  }
  assert.ok((await verifyAuditFile(auditPath)).lines > 0, 'the chain verifies');
  const recs = readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const gap = recs.findIndex((r) => r.kind === 'gap');
  assert.ok(gap > 0, 'a gap record says records were not flushed');
  assert.match(String(recs[gap]!.error), /EIO|input\/output error/i);
  const late = recs.slice(gap + 1);
  assert.ok(late.some((r) => r.kind === 'reject' && r.bundle === missing), 'the refusal whose flush failed is written again after the gap');
  assert.ok(late.some((r) => r.kind === 'reject' && r.code === 'io' && r.bundle === b2.path), 'the refused deploy is recorded after the gap');
  assert.deepEqual(recs.filter((r) => r.kind === 'deploy').map((r) => r.version), [2], 'only the deploy done once flushes worked');
});

test('records dropped after a gap record was written (a short line fits, a held record does not) are counted in the log too', { timeout: 90_000 }, async (t) => {
  if (needs(t, canMountFaultyFs(), 'root, /dev/fuse and python3-fusepy')) return;
  const fs = await mountFaultyFs('auditgap');
  const auditPath = join(fs.path, 'audit.log');
  const d = await startTestDaemon('auditgap', { audit: { path: auditPath, appendOnly: false }, limits: { auditRetryMs: 100, maxHeldAuditRecords: 100 } });
  // Missing bundles with long names: each refusal's record is over 2,000 bytes, a gap record far less.
  const long = join(d.dir, ...Array.from({ length: 8 }, (_, i) => `${String(i)}${'x'.repeat(250)}`));
  const missing = (i: number): string => `${long}-${String(i)}.bundle`;
  const refuse = async (i: number): Promise<void> => {
    const r = (await sendRequest(d.socket, { op: 'deploy', bundlePath: missing(i) }, { timeoutMs: 10_000 })) as Reply<unknown>;
    assert.equal(r.ok, false);
  };
  const recs = (): Record<string, unknown>[] => readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  let sent = 0;
  try {
    fs.failSync(true);
    for (; sent < 104; sent++) await refuse(sent);
    await waitFor('records dropped while flushes fail', 10_000, async () => ((await daemonStatus(d.socket)).audit.dropped > 0 ? true : null));
    // Flushes work again, but only short lines fit: the gap record goes in, the held refusals do not.
    fs.failWritesOver(1_000);
    fs.failSync(false);
    await waitFor('a gap record written while the held records still fail', 10_000, () => (recs().some((r) => r.kind === 'gap') ? true : null));
    assert.equal((await daemonStatus(d.socket)).audit.writable, false, 'the held records could not be written');
    for (; sent < 110; sent++) await refuse(sent);
    fs.failWritesOver(null);
    await waitFor('the log writable again', 15_000, async () => ((await daemonStatus(d.socket)).audit.writable ? true : null));
  } finally {
    await d.handle.stop('test');
  }
  assert.ok((await verifyAuditFile(auditPath)).lines > 0, 'the chain verifies');
  const all = recs();
  const written = new Set(all.filter((r) => r.kind === 'reject' && typeof r.bundle === 'string' && r.bundle.startsWith(long)).map((r) => r.bundle));
  const gaps = all.filter((r) => r.kind === 'gap');
  const dropped = gaps.reduce((n, g) => n + Number((g.droppedKinds as Record<string, number> | undefined)?.reject ?? 0), 0);
  assert.equal(written.size + dropped, sent, `every refusal is in the log or counted as dropped by a gap record: ${String(written.size)} written, gap records ${JSON.stringify(gaps.map((g) => ({ held: g.held, dropped: g.dropped, droppedKinds: g.droppedKinds })))}`);
});
