// The directory of the control socket and of a Unix metrics socket must be root's own: the daemon chowns and
// chmods the socket by path after binding it, so a user who can write the directory could swap the fresh socket
// for a symlink in between and have root hand any file to the socket's group. Real sockets, real directories
// owned by `nobody` or mode 0777 without the sticky bit: every listener refuses before binding.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ControlServer } from '../../src/daemon/control-server.js';
import { MetricsServer } from '../../src/daemon/metrics-server.js';
import { createLogger } from '../../src/adapters/logger.js';
import { sendRequest } from '../../src/adapters/control-client.js';
import { isSentinelError } from '../../src/core/errors.js';
import { cleanupDaemonFiles, prepareDaemonFiles } from '../helpers/daemon-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { sentinel } from '../helpers/cli-harness.js';

after(() => cleanupDaemonFiles());

const NOBODY = 65534;

type Unsafe = { name: string; make: (dir: string) => void };
const UNSAFE: Unsafe[] = [
  { name: 'owned by nobody', make: (d) => (mkdirSync(d, { mode: 0o755 }), chownSync(d, NOBODY, NOBODY)) },
  { name: 'mode 0777 without the sticky bit', make: (d) => (mkdirSync(d), chmodSync(d, 0o777)) },
];

function control(socketPath: string, group?: string): ControlServer {
  return new ControlServer({ socketPath, ...(group !== undefined ? { group } : {}), maxRequestBytes: 1024, requestTimeoutMs: 1_000, clientIdleMs: 1_000, maxClients: 4, maxBufferedBytes: 1024 * 1024, log: createLogger('silent'), handle: () => Promise.resolve('pong') });
}

/** Asserts `listen` is refused naming `path`; a listener that did bind is closed first, so a failing run ends. */
async function assertRefused(server: { listen(): Promise<void>; close(): Promise<void> }, path: string): Promise<void> {
  let bound = false;
  await assert.rejects(
    server.listen().then(async () => {
      bound = true;
      await server.close();
    }),
    refusedNaming(path),
  );
  assert.equal(bound, false, 'the listener bound in an unsafe directory');
}

function refusedNaming(path: string) {
  return (e: unknown): boolean => {
    assert.ok(isSentinelError(e, 'insecure-path'), `expected insecure-path, got ${String(e)}`);
    assert.equal(e.where, path);
    return true;
  };
}

for (const u of UNSAFE) {
  test(`control socket: a socket directory ${u.name} is refused before binding`, async (t) => {
    if (needs(t, isRoot(), 'root (chown to nobody)')) return;
    const base = await mkdtemp(join(tmpdir(), 'sentinel-sockdir-'));
    try {
      const run = join(base, 'run');
      u.make(run);
      const socket = join(run, 'ctl.sock');
      const server = control(socket, '0');
      await assertRefused(server, run);
      assert.equal(existsSync(socket), false, 'nothing bound in the unsafe directory');
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  test(`control socket: a directory ${u.name} above the socket's directory is refused`, async (t) => {
    if (needs(t, isRoot(), 'root (chown to nobody)')) return;
    const base = await mkdtemp(join(tmpdir(), 'sentinel-sockdir-'));
    try {
      const upper = join(base, 'upper');
      u.make(upper);
      const socket = join(upper, 'run', 'ctl.sock');
      await assertRefused(control(socket), upper);
      assert.equal(existsSync(join(upper, 'run')), false, 'nothing created under the unsafe directory');
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  test(`metrics: a Unix socket directory ${u.name} is refused before binding`, async (t) => {
    if (needs(t, isRoot(), 'root (chown to nobody)')) return;
    const base = await mkdtemp(join(tmpdir(), 'sentinel-sockdir-'));
    try {
      const run = join(base, 'run');
      u.make(run);
      const path = join(run, 'metrics.sock');
      const server = new MetricsServer({ listen: { kind: 'unix', path }, group: '0', log: createLogger('silent'), contentType: 'text/plain; version=0.0.4', render: () => Promise.resolve('up 1\n') });
      await assertRefused(server, run);
      assert.equal(existsSync(path), false, 'nothing bound in the unsafe directory');
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
}

test('control socket: a root-owned 0755 directory and a sticky root-owned ancestor (/tmp) are accepted', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const base = await mkdtemp(join(tmpdir(), 'sentinel-sockdir-'));
  try {
    const run = join(base, 'run');
    mkdirSync(run, { mode: 0o755 });
    const socket = join(run, 'ctl.sock');
    const server = control(socket);
    await server.listen();
    try {
      assert.equal(statSync(socket).mode & 0o777, 0o600);
      assert.equal(((await sendRequest(socket, { op: 'status' }, { timeoutMs: 5_000 })) as { ok: boolean }).ok, true);
    } finally {
      await server.close();
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

// The daemon as the unit runs it: a socket path in a directory others can write is the operator's configuration
// to fix, which no restart changes; exit 3 (a refused configuration), which the unit does not restart.
for (const which of ['control', 'metrics'] as const) {
  test(`daemon: refuses to start with its ${which} socket in a directory others can write; one line, exit 3 (a refused configuration), nothing bound`, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const files = await prepareDaemonFiles(`sockdir-${which}`);
    const open = join(files.dir, which === 'control' ? 'run' : 'metrics');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const socket = which === 'control' ? files.socket : join(open, 'metrics.sock');
    if (which === 'metrics') writeFileSync(files.configPath, JSON.stringify({ ...files.config, metrics: { listen: socket } }));
    const r = await sentinel(['daemon', '--config', files.configPath, '--log-level', 'silent'], { timeoutMs: 30_000 });
    assert.equal(r.errLines.length, 1, r.stderr);
    assert.match(r.errLines[0]!, new RegExp(`^sentinel: insecure-path: ${which} socket: .*writable by group or others.*\\(${open.replaceAll('/', '\\/')}\\)$`), r.stderr);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(existsSync(socket), false, 'no socket bound');
    assert.equal(existsSync(files.auditPath), false, 'refused before the audit log is opened');
  });
}

// Anyone who can write that directory can also bind a listener at the socket's name first: the daemon must name the
// unsafe directory (exit 3, not restarted), not take the planted listener for another daemon (`busy`, exit 2, which
// the unit would restart into the same refusal).
test('daemon: a listener planted at the control socket\'s name in a directory others can write is still refused as insecure-path, exit 3', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('sockdir-planted');
  const open = join(files.dir, 'run');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const planted = createServer();
  await new Promise<void>((res, rej) => planted.once('error', rej).listen(files.socket, res));
  try {
    const r = await sentinel(['daemon', '--config', files.configPath, '--log-level', 'silent'], { timeoutMs: 30_000 });
    assert.equal(r.errLines.length, 1, r.stderr);
    assert.match(r.errLines[0]!, new RegExp(`^sentinel: insecure-path: control socket: .*writable by group or others.*\\(${open.replaceAll('/', '\\/')}\\)$`), r.stderr);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(existsSync(files.auditPath), false, 'refused before the audit log is opened');
  } finally {
    await new Promise<void>((res) => planted.close(() => res()));
  }
});
