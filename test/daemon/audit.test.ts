// The audit log: the pure hash chain, the append-only (+a) file, and `sentinel audit verify` on a tampered line.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_GENESIS, chainHash, formatAuditLine, verifyAuditChain } from '../../src/core/audit.js';
import { isSentinelError } from '../../src/core/errors.js';
import { AuditLog, sha256Hex, verifyAuditFile } from '../../src/adapters/audit-log.js';
import { defaultFlagStore, FS_APPEND_FL } from '../../src/adapters/flags.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs, isRoot } from '../helpers/env.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) {
    spawnSync('chattr', ['-R', '-f', '-a', d]);
    rmSync(d, { recursive: true, force: true });
  }
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sentinel-audit-'));
  dirs.push(d);
  return d;
}
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const T = new Date('2026-11-27T12:00:00.000Z');

function chainOf(n: number): string {
  let prev = AUDIT_GENESIS;
  let text = '';
  for (let i = 1; i <= n; i++) {
    const line = formatAuditLine({ seq: i, time: T, kind: i % 2 === 0 ? 'deploy' : 'seal', prev, fields: { version: i } });
    text += `${line}\n`;
    prev = chainHash(line, sha256Hex);
  }
  return text;
}

test('chain: each line carries the SHA-256 of the previous line; fixed field order', () => {
  const text = chainOf(5);
  const first = text.split('\n')[0]!;
  assert.equal(first, `{"seq":1,"time":"2026-11-27T12:00:00.000Z","kind":"seal","prev":"${AUDIT_GENESIS}","version":1}`);
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'FIPS 180-2 vector');
  const state = verifyAuditChain(text, sha256Hex);
  assert.equal(state.lines, 5);
  assert.equal(state.nextSeq, 6);
  assert.equal(verifyAuditChain('', sha256Hex).lines, 0);
});

test('chain: an edited, removed, reordered or truncated line is found with its line number', () => {
  const lines = chainOf(6).split('\n').filter((l) => l !== '');
  const check = (mutated: string[], line: number, tail = '\n'): void => {
    assert.throws(
      () => verifyAuditChain(mutated.join('\n') + tail, sha256Hex, 'audit.log'),
      (e) => isSentinelError(e, 'audit-chain') && e.where === `audit.log:${String(line)}`,
      `expected a break reported at line ${String(line)}`,
    );
  };
  check(lines.map((l, i) => (i === 2 ? l.replace('"version":3', '"version":30') : l)), 4);
  check(lines.filter((_, i) => i !== 3), 4);
  check([lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)], 2);
  check(lines.map((l, i) => (i === 4 ? '{not json' : l)), 5);
  check(lines, 6, '');
  check(lines.map((l, i) => (i === 1 ? l.replace('"kind":"deploy"', '"kind":"party"') : l)), 2);
});

test('audit log file: kept append-only (+a), appends survive reopen, a rewrite is refused by the kernel', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +a)')) return;
  const dir = tempDir();
  const path = join(dir, 'audit.log');
  const flags = defaultFlagStore();
  const { log, report } = await AuditLog.open(path, { flags, now: () => T });
  assert.equal(report.appendOnly, true);
  assert.ok(((await flags.getFlags(path)) & FS_APPEND_FL) !== 0);
  assert.match(spawnSync('lsattr', [path], { encoding: 'utf8' }).stdout, /^-----a/);
  await Promise.all([log.append('start', { pid: 1 }), log.append('deploy', { version: 2 }), log.append('tamper', { path: 'x' })]);
  await log.close();
  assert.throws(() => writeFileSync(path, 'rewritten\n'), /EPERM|operation not permitted/i);
  appendFileSync(path, '');
  const { log: again, report: r2 } = await AuditLog.open(path, { flags, now: () => T });
  assert.equal(r2.lines, 3);
  assert.equal(r2.brokenAt, undefined);
  await again.append('heal', { version: 2 });
  await again.close();
  const state = await verifyAuditFile(path);
  assert.equal(state.lines, 4);
  const kinds = readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind);
  assert.deepEqual(kinds, ['start', 'deploy', 'tamper', 'heal']);
});

test('sentinel audit verify: exit 0 on an intact log, exit 1 naming the line after a tampered one', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +a)')) return;
  const dir = tempDir();
  const path = join(dir, 'audit.log');
  const { log } = await AuditLog.open(path, { flags: defaultFlagStore(), now: () => T });
  for (let v = 1; v <= 5; v++) await log.append('deploy', { version: v });
  await log.close();
  const ok = spawnSync(process.execPath, [cli, 'audit', 'verify', path, '--json'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { ok: boolean; lines: number }).lines, 5);

  spawnSync('chattr', ['-a', path]);
  const lines = readFileSync(path, 'utf8').split('\n');
  lines[2] = lines[2]!.replace('"version":3', '"version":9');
  writeFileSync(path, lines.join('\n'));
  const bad = spawnSync(process.execPath, [cli, 'audit', 'verify', path], { encoding: 'utf8' });
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /audit-chain: line 4 does not chain to line 3/);
  assert.match(bad.stderr, /audit\.log:4/);
  const missing = spawnSync(process.execPath, [cli, 'audit', 'verify', join(dir, 'absent.log')], { encoding: 'utf8' });
  assert.equal(missing.status, 2);
});

test('a broken log is reported at open and new lines still chain to its last line', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const dir = tempDir();
  const path = join(dir, 'audit.log');
  writeFileSync(path, chainOf(3).replace('"version":2', '"version":7'));
  const { log, report } = await AuditLog.open(path, { now: () => T });
  assert.equal(report.brokenAt?.line, `${path}:3`);
  await log.append('start', {});
  await log.close();
  const text = readFileSync(path, 'utf8').trim().split('\n');
  assert.equal(text.length, 4);
  assert.equal((JSON.parse(text[3]!) as { prev: string; seq: number }).prev, chainHash(text[2]!, sha256Hex));
  await assert.rejects(verifyAuditFile(path), (e) => isSentinelError(e, 'audit-chain') && e.where === `${path}:3`);
});

test('chain: a file that continues an earlier chain fails alone at line 1 (history lost) and verifies after the earlier one', () => {
  const first = chainOf(3);
  const state = verifyAuditChain(first, sha256Hex);
  const chainLine = formatAuditLine({ seq: 4, time: T, kind: 'chain', prev: state.lastHash, fields: { continues: { seq: 3, hash: state.lastHash } } });
  const next = formatAuditLine({ seq: 5, time: T, kind: 'start', prev: chainHash(chainLine, sha256Hex) });
  const second = `${chainLine}\n${next}\n`;
  assert.throws(
    () => verifyAuditChain(second, sha256Hex, 'new.log'),
    (e) => isSentinelError(e, 'audit-chain') && e.where === 'new.log:1' && /3 earlier records are not in this file/.test(e.message),
  );
  assert.equal(verifyAuditChain(second, sha256Hex, 'new.log', { start: { seq: state.nextSeq, prev: state.lastHash } }).lines, 2);
  const own = verifyAuditChain(second, sha256Hex, 'new.log', { allowContinuation: true });
  assert.deepEqual(own.continues, { seq: 3, hash: state.lastHash });
  assert.equal(own.nextSeq, 6);
  assert.throws(() => verifyAuditChain(second, sha256Hex, 'new.log', { start: { seq: 4, prev: AUDIT_GENESIS } }), (e) => isSentinelError(e, 'audit-chain'), 'a continuation of another chain');
});
