// The audit log file on a really full disk (a tmpfs of its own): an append is one whole line or nothing,
// the chain verifies after the space is back, and a trailing fragment left by a crash is cut off at open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isSentinelError } from '../../src/core/errors.js';
import { AUDIT_GENESIS, formatAuditLine } from '../../src/core/audit.js';
import { AuditLog, verifyAuditFile } from '../../src/adapters/audit-log.js';
import { defaultFlagStore, FS_APPEND_FL } from '../../src/adapters/flags.js';
import { needs } from '../helpers/env.js';
import { canMountTmpfs, mountTmpfs, unmountAll } from '../helpers/tmpfs.js';

after(() => unmountAll());
const tmpfsOk = canMountTmpfs();
const T = new Date('2026-11-27T12:00:00.000Z');
const PAGE = 4096;

// Pads the log with one record so that only `room` bytes are left in its last page.
async function leaveRoomInLastPage(log: AuditLog, path: string, seq: number, room: number): Promise<void> {
  const size = statSync(path).size;
  const probe = formatAuditLine({ seq, time: T, kind: 'seal', prev: AUDIT_GENESIS, fields: { pad: '' } }).length + 1;
  let pad = PAGE - room - ((size + probe) % PAGE);
  if (pad < 0) pad += PAGE;
  await log.append('seal', { pad: 'p'.repeat(pad) });
  assert.equal(PAGE - (statSync(path).size % PAGE), room, 'the last page has exactly the room the test wants');
}

test('audit log on a full tmpfs: a short append leaves only whole lines, is refused io, and the chain continues once there is room', async (t) => {
  if (needs(t, tmpfsOk, 'root and a mountable tmpfs')) return;
  const fs = mountTmpfs('audit', 64 * 1024);
  const path = join(fs.path, 'audit.log');
  const flags = defaultFlagStore();
  const { log } = await AuditLog.open(path, { flags, now: () => T });
  try {
    await log.append('start', { pid: 1 });
    await leaveRoomInLastPage(log, path, 2, 40);
    const before = readFileSync(path);
    assert.ok(fs.fill() > 0);
    await assert.rejects(log.append('deploy', { version: 2, detail: 'x'.repeat(200) }), (e) => isSentinelError(e, 'io') && e.where === path, 'a short write is a failed append');
    const after1 = readFileSync(path);
    assert.equal(after1.length, before.length, `the fragment was cut off (file grew from ${String(before.length)} to ${String(after1.length)} bytes)`);
    assert.ok(((await flags.getFlags(path)) & FS_APPEND_FL) !== 0, 'the log is append-only again after the repair');
    await assert.rejects(log.append('deploy', { version: 2 }), (e) => isSentinelError(e, 'io'), 'still full');
    fs.free();
    await log.append('deploy', { version: 3 });
  } finally {
    await log.close();
  }
  const state = await verifyAuditFile(path);
  assert.equal(state.lines, 3, 'start, pad, deploy v3: every failed append left nothing');
  const kinds = readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind);
  assert.deepEqual(kinds, ['start', 'seal', 'deploy']);
});

test('audit log: a trailing fragment (a crash mid-append) is cut off at open and reported; the chain verifies', async (t) => {
  if (needs(t, tmpfsOk, 'root and a mountable tmpfs')) return;
  const fs = mountTmpfs('audit-frag', 64 * 1024);
  const path = join(fs.path, 'audit.log');
  const flags = defaultFlagStore();
  const first = await AuditLog.open(path, { flags, now: () => T });
  await first.log.append('start', { pid: 1 });
  await first.log.append('deploy', { version: 2 });
  await first.log.close();
  const fragment = '{"seq":3,"time":"2026-11-27T12:00:00.000Z","kind":"dep';
  appendFileSync(path, fragment);
  const { log, report } = await AuditLog.open(path, { flags, now: () => T });
  try {
    assert.equal(report.brokenAt, undefined, `the fragment is not a break: ${JSON.stringify(report.brokenAt)}`);
    assert.equal(report.trimmedFragment?.bytes, fragment.length);
    assert.equal(report.lines, 2);
    await log.append('start', { pid: 2 });
  } finally {
    await log.close();
  }
  assert.equal((await verifyAuditFile(path)).lines, 3);
});
