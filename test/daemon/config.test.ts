// The daemon configuration: the documented key names, documented defaults, every bad field named, exit 3 from `sentinel daemon`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeDaemonFlags, parseDaemonConfig } from '../../src/daemon/config.js';
import { DEFAULT_DAEMON_LIMITS } from '../../src/core/config-limits.js';
import { isSentinelError, type SentinelError } from '../../src/core/errors.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startTestDaemon } from '../helpers/daemon-harness.js';
import { startDaemon } from '../../src/daemon/main.js';
import { createLogger } from '../../src/adapters/logger.js';

const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

after(() => cleanupDaemonFiles());

test('the documented example config is accepted, with documented defaults filled in', () => {
  const c = parseDaemonConfig(
    {
      vault: { path: '/var/lib/omnimind/phi-engine', trust: ['/etc/omnimind-sentinel/keys/release.pub'], threshold: 1, inbox: '/var/lib/omnimind-sentinel/inbox', onTamper: 'heal' },
      control: { socket: '/run/omnimind-sentinel/sentinel.sock' },
      targets: [
        { name: 'backend', unit: 'omnimind-backend.service', port: 8000, health: { url: 'http://127.0.0.1:8000/health' } },
        { name: 'demo', command: ['python3', '-m', 'http.server', '8000'], port: 8000 },
        { name: 'legacy', pidFile: '/run/legacy.pid', restart: ['/usr/local/bin/restart-legacy'] },
      ],
    },
    'design.json',
  );
  assert.equal(c.vault.onTamper, 'heal');
  assert.equal(c.audit.path, '/var/log/omnimind-sentinel/audit.log');
  assert.equal(c.stateDir, '/var/lib/omnimind-sentinel');
  assert.equal(c.log.level, 'info');
  assert.deepEqual(c.limits, DEFAULT_DAEMON_LIMITS);
  assert.equal(c.targets.length, 3);
});

test('the shipped sample config examples/sentinel.json is valid', () => {
  const text = readFileSync(join(packageRoot(), 'examples', 'sentinel.json'), 'utf8');
  const c = parseDaemonConfig(JSON.parse(text), 'examples/sentinel.json');
  assert.equal(c.control.socket, '/run/omnimind-sentinel/sentinel.sock');
  // the backend's event loop is watched for stalls (an alert: the unit's own watchdog restarts a hung one)
  assert.deepEqual(c.targets.map((t) => [t.name, t.stall]), [['backend', { thresholdMs: 2000, action: 'alert' }]]);
});

test('every bad field is named with its JSON path', () => {
  let err: SentinelError | undefined;
  try {
    parseDaemonConfig(
      {
        vault: { path: 'relative/vault', trust: [], threshold: 0, onTamper: 'ignore', colour: 'blue' },
        control: { socket: 42 },
        limits: { verifyIntervalMs: 5, maxRequestBytes: 'big' },
        log: { level: 'loud' },
      },
      'bad.json',
    );
  } catch (e) {
    if (isSentinelError(e)) err = e;
  }
  assert.ok(err !== undefined, 'a bad config throws a SentinelError');
  assert.equal(err.code, 'config');
  assert.equal(err.where, 'bad.json');
  for (const field of ['vault.path', 'vault.trust', 'vault.threshold', 'vault.onTamper', 'vault: Unrecognized key', 'control.socket', 'limits.verifyIntervalMs', 'limits.maxRequestBytes', 'log.level']) {
    assert.ok(err.message.includes(field), `message names ${field}: ${err.message}`);
  }
  assert.ok(err.message.includes('colour'), 'the unknown key is named');
});

test('two targets with the same name are refused, naming the second one', () => {
  const base = { vault: { path: '/v', trust: ['/k.pub'] } };
  assert.throws(
    () => parseDaemonConfig({ ...base, targets: [{ name: 'web', command: ['true'] }, { name: 'db', command: ['true'] }, { name: 'web', unit: 'web.service' }] }, 'dup.json'),
    (e) => isSentinelError(e, 'config') && /targets\[2\]\.name/.test(e.message) && /web/.test(e.message),
  );
  assert.equal(parseDaemonConfig({ ...base, targets: [{ name: 'web', command: ['true'] }, { name: 'db', command: ['true'] }] }, 'ok.json').targets.length, 2);
});

test('--vault/--trust/--socket run the daemon with no file at all', () => {
  const c = parseDaemonConfig(mergeDaemonFlags({}, { vault: '/v', trust: ['/k.pub'], socket: '/run/s.sock' }), 'flags');
  assert.equal(c.vault.path, '/v');
  assert.deepEqual(c.vault.trust, ['/k.pub']);
  assert.equal(c.control.socket, '/run/s.sock');
  const over = parseDaemonConfig(mergeDaemonFlags({ vault: { path: '/a', trust: ['/x.pub'], onTamper: 'alert' } }, { vault: '/b' }), 'file+flags');
  assert.equal(over.vault.path, '/b', 'flags override the file');
  assert.equal(over.vault.onTamper, 'alert', 'the rest of the file stays');
});

test('sentinel daemon with a bad config exits 3 (the unit does not restart it) with one line naming the fields', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-config-'));
  try {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ vault: { path: '/v', trust: ['/k.pub'], onTamper: 'explode' }, limits: { watchDepth: -1 } }));
    const r = spawnSync(process.execPath, [cli, 'daemon', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /config: invalid configuration: .*vault\.onTamper.*limits\.watchDepth/);
    writeFileSync(file, '{ "vault": ');
    const j = spawnSync(process.execPath, [cli, 'daemon', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(j.status, 3);
    assert.match(j.stderr, /not valid JSON/);
    const none = spawnSync(process.execPath, [cli, 'daemon', '--config', join(dir, 'absent.json')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(none.status, 3);
    assert.match(none.stderr, /not-found/);
    const missingKey = spawnSync(process.execPath, [cli, 'daemon', '--vault', '/v', '--trust', join(dir, 'absent.pub'), '--socket', join(dir, 's.sock'), '--audit-log', join(dir, 'a.log')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(missingKey.status, 3, missingKey.stderr);
    assert.match(missingKey.stderr, /vault\.trust\[0\]/);
    // A secret key or a file that is no key where a trusted public key belongs: the same config refusal, naming the setting.
    assert.equal(spawnSync(process.execPath, [cli, 'keygen', '--out', join(dir, 'release')], { encoding: 'utf8', timeout: 30_000 }).status, 0);
    writeFileSync(join(dir, 'garbage.pub'), 'not a key\n');
    for (const [i, bad] of [join(dir, 'release.key'), join(dir, 'garbage.pub')].entries()) {
      const r = spawnSync(process.execPath, [cli, 'daemon', '--vault', '/v', '--trust', join(dir, 'release.pub'), bad, '--socket', join(dir, 's.sock'), '--audit-log', join(dir, 'a.log')], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 3, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), new RegExp(`^sentinel: config: .+ \\(vault\\.trust\\[1\\]: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`), `case ${String(i)}: ${r.stderr}`);
    }
    // Nothing at all: the line says what to give, not a schema message about a missing object.
    const bare = spawnSync(process.execPath, [cli, 'daemon'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(bare.status, 3, bare.stderr);
    assert.equal(bare.stderr.trim().split('\n').length, 1, bare.stderr);
    assert.match(bare.stderr, /^sentinel: config: no configuration: give --config FILE, or --vault DIR and --trust PUB/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP reload: live settings applied, every other changed setting logged as ignored and kept at its running value', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('reload', { limits: { maxQueuedDeploys: 10, verifyIntervalMs: 300_000 } });
  try {
    writeFileSync(d.configPath, JSON.stringify({ ...JSON.parse(readFileSync(d.configPath, 'utf8')), limits: { maxQueuedDeploys: 20, verifyIntervalMs: 60_000 }, stateDir: join(d.dir, 'state2') }));
    assert.equal(await d.handle.reload(), true);
    const line = d.logLines.find((l) => l.event === 'reload' && Array.isArray(l.ignored));
    assert.deepEqual(line?.ignored, ['limits.maxQueuedDeploys', 'stateDir'], JSON.stringify(line));
    assert.equal(d.handle.config.limits.verifyIntervalMs, 60_000, 'a period is applied live');
    assert.equal(d.handle.config.limits.maxQueuedDeploys, 10, 'the running value is what is in force');
    assert.equal(d.handle.config.stateDir, join(d.dir, 'state'));
  } finally {
    await d.handle.stop('test');
  }
});

test('a configuration refused after the vault was opened (command target with restart) leaves no audit log descriptor open', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('late-refusal', { targets: [{ name: 'x', command: ['sleep', '5'], restart: ['true'] }] });
  const auditFds = (): number => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === files.auditPath;
    } catch {
      return false;
    }
  }).length;
  await assert.rejects(startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') }), (e) => isSentinelError(e, 'config'));
  assert.equal(auditFds(), 0, 'the audit log was closed when start-up failed');
});

test('metrics.listen: an IP:PORT or a socket path; anything else is refused naming metrics.listen (exit 3 at start)', () => {
  const base = { vault: { path: '/v', trust: ['/k.pub'] } };
  assert.equal(parseDaemonConfig(base, 'm.json').metrics.listen, undefined, 'off by default');
  for (const listen of ['127.0.0.1:9464', '[::1]:9464', '0.0.0.0:9464', '/run/omnimind-sentinel/metrics.sock']) {
    assert.equal(parseDaemonConfig({ ...base, metrics: { listen } }, 'm.json').metrics.listen, listen, listen);
  }
  for (const listen of ['localhost:9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '300.1.1.1:9464', ':9464', 'run/metrics.sock', '/run/../x.sock', '[fe80::1:9464', '']) {
    assert.throws(() => parseDaemonConfig({ ...base, metrics: { listen } }, 'm.json'), (e: unknown) => isSentinelError(e, 'config') && /metrics\.listen: /.test(e.message), listen);
  }
  assert.throws(() => parseDaemonConfig({ ...base, metrics: { listen: '127.0.0.1:9464', port: 1 } }, 'm.json'), /metrics: /);
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-config-'));
  try {
    const file = join(dir, 'bad-metrics.json');
    writeFileSync(file, JSON.stringify({ ...base, metrics: { listen: 'localhost:9464' } }));
    const r = spawnSync(process.execPath, [cli, 'daemon', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^sentinel: config: invalid configuration: metrics\.listen: "localhost" is not an IP address/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
