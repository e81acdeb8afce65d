// The control socket's bounds against a real Unix socket: slow handlers, half-open and silent clients,
// many clients at once, and a listen that fails half-way.
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer, RESERVED_CLIENTS } from '../../src/daemon/control-server.js';
import { Uploads } from '../../src/daemon/uploads.js';
import { sendRequest } from '../../src/adapters/control-client.js';
import { createLogger } from '../../src/adapters/logger.js';
import { isSentinelError } from '../../src/core/errors.js';
import type { ControlCommand } from '../../src/daemon/control-protocol.js';
import { isRoot, needs } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';

interface Reply {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

async function withServer(
  opts: { requestTimeoutMs?: number; clientIdleMs?: number; maxClients?: number; maxRequestBytes?: number; maxBufferedBytes?: number; uploads?: Uploads; handle?: (r: ControlCommand) => Promise<unknown> },
  fn: (socket: string, server: ControlServer) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-bounds-'));
  const socket = join(dir, 'ctl.sock');
  const server = new ControlServer({
    socketPath: socket,
    maxRequestBytes: opts.maxRequestBytes ?? 64 * 1024,
    requestTimeoutMs: opts.requestTimeoutMs ?? 300,
    clientIdleMs: opts.clientIdleMs ?? 5_000,
    maxClients: opts.maxClients ?? 64,
    maxBufferedBytes: opts.maxBufferedBytes ?? 16 * 1024 * 1024,
    ...(opts.uploads !== undefined ? { uploads: opts.uploads } : {}),
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

test('control socket: maxClients requests in handling, then a reserve of small requests, then busy', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  await withServer({ requestTimeoutMs: 5_000, maxClients: 3, handle: async (r) => (r.op === 'status' ? 'status' : gate.then(() => 'ok')) }, async (socket, server) => {
    const held = Array.from({ length: 3 + RESERVED_CLIENTS }, () => sendRequest(socket, { op: 'verify' }, { timeoutMs: 10_000 }) as Promise<Reply>);
    const deadline = Date.now() + 5_000;
    while (server.connections < 3 + RESERVED_CLIENTS) {
      assert.ok(Date.now() < deadline, `all clients connected (have ${String(server.connections)})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const extra = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(extra.ok, false, `a client beyond maxClients and the reserve was served: ${JSON.stringify(extra)}`);
    assert.equal(extra.error?.code, 'busy', JSON.stringify(extra));
    release();
    for (const r of await Promise.all(held)) assert.equal(r.ok, true);
    const after = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(after.ok, true, 'served again once the others finished');
  });
});

test('control socket: with every slot held by requests in handling, status is still answered (the reserve)', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  await withServer({ requestTimeoutMs: 5_000, maxClients: 4, handle: async (r) => (r.op === 'status' ? 'status' : gate.then(() => 'ok')) }, async (socket, server) => {
    const held = Array.from({ length: 4 }, () => sendRequest(socket, { op: 'verify' }, { timeoutMs: 10_000 }) as Promise<Reply>);
    await waitFor('the 4 clients connected to the server', 30_000, () => (server.connections >= 4 ? true : null), 10);
    const status = (await within(sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 }), 5_000, 'status')) as Reply;
    assert.equal(status.ok, true, JSON.stringify(status));
    assert.equal(status.result, 'status');
    const big = (await sendRequest(socket, { op: 'deploy', bundlePath: `/${'x'.repeat(8_000)}` }, { timeoutMs: 10_000 })) as Reply;
    assert.equal(big.error?.code, 'too-large', `a reserve slot takes only a small request: ${JSON.stringify(big)}`);
    release();
    await Promise.all(held);
  });
});

test('control socket: 64 idle clients (connected, silent, never closing) do not lock status out', async () => {
  await withServer({ requestTimeoutMs: 30_000, maxClients: 64 }, async (socket, server) => {
    const idle = await Promise.all(Array.from({ length: 64 }, () => halfOpenClient(socket, '')));
    try {
      await waitFor('the 64 idle clients connected to the server', 30_000, () => (server.connections >= 64 ? true : null), 10);
      for (let i = 0; i < 5; i++) {
        const r = (await within(sendRequest(socket, { op: 'status' }, { timeoutMs: 5_000 }), 5_000, `status ${String(i)}`)) as Reply;
        assert.equal(r.ok, true, `status ${String(i)} was refused: ${JSON.stringify(r)}`);
      }
    } finally {
      for (const c of idle) c.s.destroy();
    }
  });
});

test('control socket: a client silent for clientIdleMs is dropped before requestTimeoutMs', async () => {
  await withServer({ requestTimeoutMs: 30_000, clientIdleMs: 200 }, async (socket, server) => {
    const c = await halfOpenClient(socket, '{"op":');
    const reply = await within(c.reply, 3_000, 'idle reply');
    assert.match(reply, /"code":"usage"/);
    const deadline = Date.now() + 3_000;
    while (server.connections > 0) {
      assert.ok(Date.now() < deadline, 'the idle client is disconnected');
      await new Promise((r) => setTimeout(r, 20));
    }
    c.s.destroy();
  });
});

test('control socket: uploads stream to files; the bytes buffered across all clients stay within maxBufferedBytes (plus one read each)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-up-'));
  const uploads = new Uploads(join(dir, 'incoming'));
  await uploads.prepare();
  const seen: number[] = [];
  const limit = 256 * 1024;
  try {
    await withServer(
      {
        requestTimeoutMs: 30_000,
        maxRequestBytes: 8 * 1024 * 1024,
        maxBufferedBytes: limit,
        uploads,
        handle: async (r) => {
          if (r.op === 'deploy' && 'upload' in r) seen.push((await stat(r.upload.path)).size);
          return 'stored';
        },
      },
      async (socket, server) => {
        const clients = 8;
        const payloads = Array.from({ length: clients }, (_, i) => Buffer.alloc(3 * 1024 * 1024 + i, i + 1));
        const replies = await Promise.all(payloads.map((p) => sendRequest(socket, { op: 'deploy', bundleBase64: p.toString('base64') }, { timeoutMs: 30_000 }) as Promise<Reply>));
        for (const r of replies) assert.equal(r.ok, true, JSON.stringify(r));
        assert.deepEqual([...seen].sort((a, b) => a - b), payloads.map((p) => p.length));
        assert.ok(server.peakBufferedBytes <= limit + clients * 64 * 1024, `peak ${String(server.peakBufferedBytes)} bytes buffered`);
        assert.ok(server.peakBufferedBytes > 0);
      },
    );
    assert.deepEqual(await readdir(join(dir, 'incoming')), [], 'every upload removed after its reply');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('control socket: a listen that fails after binding (unknown control.group) leaves no server and no socket file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-ctl-bounds-'));
  const socket = join(dir, 'ctl.sock');
  try {
    const server = new ControlServer({ socketPath: socket, group: 'no-such-group-sentinel-test', maxRequestBytes: 1024, requestTimeoutMs: 1_000, clientIdleMs: 1_000, maxClients: 4, maxBufferedBytes: 1024 * 1024, log: createLogger('silent'), handle: () => Promise.resolve(null) });
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
      const s = new ControlServer({ socketPath: ${JSON.stringify(join(dir, 'ctl.sock'))}, group: '65534', maxRequestBytes: 1024, requestTimeoutMs: 1000, clientIdleMs: 1000, maxClients: 4, maxBufferedBytes: 1048576, log: createLogger('silent'), handle: async () => null });
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
