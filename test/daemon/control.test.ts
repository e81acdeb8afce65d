// The control socket of a real in-process daemon: every bad request gets an error reply and the daemon keeps
// serving; a storm of 50 concurrent deploys is serialised: every submission answered, final version the highest,
// audit chain intact.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { verifyAuditFile } from '../../src/adapters/audit-log.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startTestDaemon, type TestDaemon } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';
import { isSentinelError } from '../../src/core/errors.js';
import { packageRoot } from '../../src/adapters/package-root.js';

after(() => cleanupDaemonFiles());

interface Reply {
  ok: boolean;
  op?: string;
  id?: string;
  result?: Record<string, unknown>;
  error?: { code: string; message: string; where?: string };
}

/** Sends raw bytes (not necessarily JSON) and reads the one reply line. */
function raw(socket: string, bytes: Buffer | string, opts: { end?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let text = '';
    s.on('connect', () => {
      if (opts.end === false) s.write(bytes);
      else s.end(bytes);
    });
    s.on('data', (b: Buffer) => {
      text += b.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        s.destroy();
        resolve(JSON.parse(text.slice(0, nl)) as Reply);
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed without a reply; got ${JSON.stringify(text)}`)));
  });
}

const request = (d: TestDaemon, req: unknown): Promise<Reply> => sendRequest(d.socket, req, { timeoutMs: 60_000 }) as Promise<Reply>;

async function assertStillServing(d: TestDaemon): Promise<void> {
  const r = await request(d, { op: 'status' });
  assert.equal(r.ok, true, `daemon still serves status: ${JSON.stringify(r)}`);
}

test('control socket: mode 0600; every bad request gets an error reply and the daemon keeps serving', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('ctl-bad', { limits: { maxRequestBytes: 64 * 1024, requestTimeoutMs: 500 } });
  try {
    assert.equal(statSync(d.socket).mode & 0o777, 0o600);
    const cases: { name: string; send: Buffer | string; code: string; end?: boolean }[] = [
      { name: 'malformed JSON', send: '{"op": "status"\n', code: 'usage' },
      { name: 'not an object', send: '[1,2,3]\n', code: 'usage' },
      { name: 'unknown op', send: '{"op":"format-disk"}\n', code: 'usage' },
      { name: 'unknown field', send: '{"op":"status","force":true}\n', code: 'usage' },
      { name: 'deploy without a bundle', send: '{"op":"deploy"}\n', code: 'usage' },
      { name: 'deploy with both forms', send: `${JSON.stringify({ op: 'deploy', bundlePath: '/x', bundleBase64: 'AA==' })}\n`, code: 'usage' },
      { name: 'relative bundle path', send: '{"op":"deploy","bundlePath":"x.bundle"}\n', code: 'usage' },
      { name: 'oversized request', send: `{"op":"deploy","bundleBase64":"${'A'.repeat(200 * 1024)}"}\n`, code: 'too-large' },
      { name: 'non-bundle bytes (base64)', send: `${JSON.stringify({ op: 'deploy', bundleBase64: Buffer.from('#!/bin/sh\nrm -rf /\n').toString('base64') })}\n`, code: 'malformed-bundle' },
      { name: 'missing bundle file', send: `${JSON.stringify({ op: 'deploy', bundlePath: join(d.dir, 'absent.bundle') })}\n`, code: 'not-found' },
      { name: 'empty request', send: '', code: 'usage' },
      { name: 'no newline, connection kept open', send: '{"op":"status"', code: 'usage', end: false },
    ];
    for (const c of cases) {
      const reply = await raw(d.socket, c.send, { end: c.end });
      assert.equal(reply.ok, false, `${c.name}: ${JSON.stringify(reply)}`);
      assert.equal(reply.error?.code, c.code, `${c.name}: ${JSON.stringify(reply)}`);
      await assertStillServing(d);
    }
    const nonBundleFile = join(d.dir, 'junk.bundle');
    writeFileSync(nonBundleFile, 'this is not a bundle');
    const junk = await request(d, { op: 'deploy', bundlePath: nonBundleFile, id: 'j1' });
    assert.equal(junk.ok, false);
    assert.equal(junk.id, 'j1');
    assert.equal(junk.error?.code, 'malformed-bundle');
    const status = await request(d, { op: 'status' });
    assert.equal((status.result?.vault as { version: number }).version, 1, 'nothing deployed by any bad request');
    const verify = await request(d, { op: 'verify' });
    assert.equal((verify.result as { ok: boolean }).ok, true);
  } finally {
    await d.handle.stop('test');
  }
});

test('deploy storm: 50 concurrent submissions of different versions, none lost, final version highest, audit chain intact', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('ctl-storm');
  try {
    const versions = Array.from({ length: 50 }, (_, i) => i + 2);
    const bundles = [];
    for (const v of versions) bundles.push(await d.bundle(v));
    const shuffled = [...bundles].sort((a, b) => ((a.version * 7919) % 53) - ((b.version * 7919) % 53));
    const replies = await Promise.all(
      shuffled.map((b, i) =>
        i % 2 === 0
          ? request(d, { op: 'deploy', bundlePath: b.path, id: `v${String(b.version)}` })
          : request(d, { op: 'deploy', bundleBase64: readFileSync(b.path).toString('base64'), id: `v${String(b.version)}` }),
      ),
    );
    assert.equal(replies.length, 50, 'every submission got a reply');
    let accepted = 0;
    let highestAccepted = 0;
    for (const [i, r] of replies.entries()) {
      assert.equal(r.id, `v${String(shuffled[i]!.version)}`);
      if (r.ok) {
        accepted++;
        const v = (r.result as { version: number }).version;
        assert.ok(v > highestAccepted, 'accepted versions only go up, in processing order');
        highestAccepted = Math.max(highestAccepted, v);
      } else assert.equal(r.error?.code, 'rollback', `a refused storm submission is a rollback: ${JSON.stringify(r)}`);
    }
    assert.ok(accepted >= 1);
    const status = await request(d, { op: 'status' });
    assert.equal((status.result?.vault as { version: number }).version, 51, 'final version is the highest submitted');
    const counters = status.result?.counters as { deploys: number; rejects: number };
    assert.equal(counters.deploys + counters.rejects, 50, 'every submission processed');
    const verify = await request(d, { op: 'verify' });
    assert.equal((verify.result as { ok: boolean }).ok, true);
    await d.handle.stop('test');
    const chain = await verifyAuditFile(d.auditPath);
    const lines = readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; code?: string });
    assert.equal(chain.lines, lines.length);
    assert.equal(lines.filter((l) => l.kind === 'deploy').length, counters.deploys);
    assert.equal(lines.filter((l) => l.kind === 'reject').length, counters.rejects);
  } finally {
    await d.handle.stop('test');
  }
});

test('control socket: a stale socket file is replaced, a live one is never taken over; control.group gives 0660', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('ctl-stale');
  const socket = join(files.dir, 'run', 'sentinel.sock');
  const config = { ...files.config, control: { socket, group: 'root' } };
  writeFileSync(files.configPath, JSON.stringify(config));
  mkdirSync(join(files.dir, 'run'), { recursive: true });
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  try {
    await assert.rejects(startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') }), (e) => isSentinelError(e, 'busy'));
    assert.equal(existsSync(files.auditPath), false, 'a refused second daemon wrote nothing to the audit log (its chain stays intact)');
  } finally {
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
  }
  assert.ok(statSync(socket).isSocket(), 'the killed server left its socket file behind');
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    assert.equal(statSync(socket).mode & 0o777, 0o660);
    assert.equal(statSync(socket).gid, 0);
    const r = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(r.ok, true);
  } finally {
    await handle.stop('test');
  }
});

test('sentinel status --socket: human lines and --json from a running daemon; exit 2 when none runs', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('ctl-status');
  const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  try {
    const human = await run(['status', '--socket', d.socket]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^daemon: {3}pid \d+/m);
    assert.match(human.stdout, /^vault: {4}\S+ v1 release r00000001-[0-9a-f]{12} intact \(verified \d+s ago\); sealed: yes; on tamper: heal$/m);
    assert.match(human.stdout, /^watchdog: not under systemd, healthy: yes/m);
    assert.doesNotMatch(human.stdout, /[{}"]|, ,/, 'no raw JSON and no empty field in the human form');
    const json = await run(['status', '--socket', d.socket, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { ok: boolean; vault: { version: number }; counters: { deploys: number } };
    assert.equal(parsed.ok, true);
    assert.equal(parsed.vault.version, 1);
  } finally {
    await d.handle.stop('test');
  }
  const none = await new Promise<number | null>((resolve) => spawn(process.execPath, [join(packageRoot(), 'dist', 'src', 'cli', 'main.js'), 'status', '--socket', d.socket], { stdio: 'ignore' }).on('close', resolve));
  assert.equal(none, 2, 'no daemon: unavailable, exit 2');
});
