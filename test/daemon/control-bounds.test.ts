// The control socket's bounds against a real Unix socket: slow handlers, half-open and silent clients,
// many clients at once, and a listen that fails half-way.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer } from '../../src/daemon/control-server.js';
import { sendRequest } from '../../src/adapters/control-client.js';
import { createLogger } from '../../src/adapters/logger.js';
import { isSentinelError } from '../../src/core/errors.js';
import type { ControlRequest } from '../../src/daemon/control-protocol.js';
import { isRoot, needs } from '../helpers/env.js';

interface Reply {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

async function withServer(
  opts: { requestTimeoutMs?: number; maxClients?: number; handle?: (r: ControlRequest) => Promise<unknown> },
  fn: (socket: string, server: ControlServer) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-bounds-'));
  const socket = join(dir, 'ctl.sock');
  const server = new ControlServer({
    socketPath: socket,
    maxRequestBytes: 64 * 1024,
    requestTimeoutMs: opts.requestTimeoutMs ?? 300,
    maxClients: opts.maxClients ?? 64,
    log: createLogger('silent'),
    handle: opts.handle ?? (() => Promise.resolve('pong')),
  });
  await server.listen();
  try {
    await fn(socket, server);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A client that never closes its own side (allowHalfOpen), as a slow or hostile peer would. */
function halfOpenClient(socket: string, send: string): Promise<{ s: Socket; reply: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socket, allowHalfOpen: true });
    let text = '';
    const reply = new Promise<string>((r) => s.on('data', (b: Buffer) => {
      text += b.toString('utf8');
      if (text.includes('\n')) r(text);
    }));
    s.once('error', reject);
    s.once('connect', () => {
      if (send !== '') s.write(send);
      resolve({ s, reply });
    });
  });
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${String(ms)} ms`)), ms);
    }),
  ]);
}

test('control socket: a request whose handling outlasts requestTimeoutMs still gets its real reply', async () => {
  await withServer({ requestTimeoutMs: 150, handle: () => new Promise((r) => setTimeout(() => r('done late'), 600)) }, async (socket) => {
    const reply = (await sendRequest(socket, { op: 'verify' }, { timeoutMs: 5_000 })) as Reply;
    assert.equal(reply.ok, true, `the request line arrived in time; the slow handler must not be cut off: ${JSON.stringify(reply)}`);
    assert.equal(reply.result, 'done late');
  });
});

test('control socket: a client that keeps its side open after the reply is disconnected', async () => {
  await withServer({ requestTimeoutMs: 200 }, async (socket, server) => {
    const gone = async (what: string): Promise<void> => {
      const deadline = Date.now() + 3_000;
      while (server.connections > 0) {
        assert.ok(Date.now() < deadline, `${what}: still ${String(server.connections)} connection(s) open on the server`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const answered = await halfOpenClient(socket, '{"op":"status"}\n');
    assert.match(await within(answered.reply, 2_000, 'reply'), /"ok":true/);
    await gone('half-open client after its reply');
    answered.s.destroy();
    const silent = await halfOpenClient(socket, '');
    assert.match(await within(silent.reply, 2_000, 'timeout reply'), /"code":"usage"/);
    await gone('silent client after its timeout reply');
    silent.s.destroy();
  });
});

test('control socket: more than maxClients connections at once: the extra one is refused busy, the others served', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  await withServer({ requestTimeoutMs: 5_000, maxClients: 3, handle: async () => gate.then(() => 'ok') }, async (socket, server) => {
    const held = [1, 2, 3].map(() => sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 }) as Promise<Reply>);
    const deadline = Date.now() + 5_000;
    while (server.connections < 3) {
      assert.ok(Date.now() < deadline, `three clients connected (have ${String(server.connections)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const extra = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(extra.ok, false, `a fourth concurrent client was served: ${JSON.stringify(extra)}`);
    assert.equal(extra.error?.code, 'busy', JSON.stringify(extra));
    release();
    for (const r of await Promise.all(held)) assert.equal(r.ok, true);
    const after = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(after.ok, true, 'served again once the others finished');
  });
});

test('control socket: a listen that fails after binding (unknown control.group) leaves no server and no socket file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-bounds-'));
  const socket = join(dir, 'ctl.sock');
  try {
    const server = new ControlServer({ socketPath: socket, group: 'no-such-group-sentinel-test', maxRequestBytes: 1024, requestTimeoutMs: 1_000, maxClients: 4, log: createLogger('silent'), handle: () => Promise.resolve(null) });
    await assert.rejects(server.listen(), (e) => isSentinelError(e, 'config'));
    assert.equal(existsSync(socket), false, 'the socket file is removed');
    await assert.rejects(sendRequest(socket, { op: 'status' }, { timeoutMs: 2_000 }), (e) => isSentinelError(e, 'unavailable'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('control socket: control.group without CAP_CHOWN (as under the shipped unit) fails not-permitted, naming the capability', async (t) => {
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  if (needs(t, isRoot() && setpriv, 'root and setpriv (util-linux)')) return;
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-bounds-'));
  try {
    const serverModule = fileURLToPath(new URL('../../src/daemon/control-server.js', import.meta.url));
    const loggerModule = fileURLToPath(new URL('../../src/adapters/logger.js', import.meta.url));
    const script = `
      const { ControlServer } = await import(${JSON.stringify(serverModule)});
      const { createLogger } = await import(${JSON.stringify(loggerModule)});
      const s = new ControlServer({ socketPath: ${JSON.stringify(join(dir, 'ctl.sock'))}, group: '65534', maxRequestBytes: 1024, requestTimeoutMs: 1000, maxClients: 4, log: createLogger('silent'), handle: async () => null });
      try { await s.listen(); console.log(JSON.stringify({ ok: true })); await s.close(); }
      catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, message: e.message })); }`;
    const r = spawnSync('setpriv', ['--bounding-set=-chown', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { ok: boolean; code?: string; message?: string };
    assert.equal(out.ok, false, `listen succeeded without CAP_CHOWN: ${r.stdout} ${r.stderr}`);
    assert.equal(out.code, 'not-permitted', JSON.stringify(out));
    assert.match(out.message ?? '', /CAP_CHOWN/);
    assert.equal(existsSync(join(dir, 'ctl.sock')), false, 'no socket file left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
