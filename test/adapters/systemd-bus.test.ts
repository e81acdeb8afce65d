// The addon's restart and unit read over D-Bus (native/src/systemd-bus.c, systemd-unit.c) outside a
// booted systemd: they are built in, the restart takes only RestartUnit/TryRestartUnit, with no bus to
// reach each falls back to the systemctl process, and a bus that accepts and never answers holds a call
// no longer than its timeout. Under a real systemd the D-Bus paths themselves are proven by
// test/systemd/restart-race.test.ts (no systemctl restart or show process, a refused job not queued, the
// read against systemctl show's, a wait ended by systemd's signal).
import { strict as assert } from 'node:assert';
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import { systemdBusProblem, type SystemdBusAddon } from '../../src/adapters/systemd-bus.js';
import { unitBusProblem, type UnitStateAddon } from '../../src/adapters/systemd-unit-bus.js';
import { isRoot, needs } from '../helpers/env.js';

/**
 * Runs one addon call (JS source, e.g. "unitStateAsync(...)") in a child whose /run/systemd is hidden and
 * whose system bus is a socket that accepts the connection and never answers: the call must end at its own
 * deadline with the private socket's ENOENT and the system bus's handshake timed out (sd-bus alone would
 * wait 90 s for the handshake; the test's own guard against hanging is 60 s).
 */
async function silentBusCall(call: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-silent-bus-'));
  const held: Socket[] = [];
  const server = createServer((c) => held.push(c));
  await new Promise<void>((resolve) => server.listen(join(dir, 'bus'), resolve));
  try {
    const nativeJs = fileURLToPath(new URL('../../src/adapters/native.js', import.meta.url));
    const script = `
      const { loadNative } = await import(${JSON.stringify(nativeJs)});
      const r = await loadNative().${call}.then((v) => ({ ok: v }), (e) => ({ code: e.code, syscall: e.syscall, bus: e.bus, systemBusCode: e.systemBusCode, systemBusSyscall: e.systemBusSyscall }));
      console.log(JSON.stringify(r));`;
    const r = await promisify(execFile)('unshare', hiddenSystemdArgs(script), { encoding: 'utf8', env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'bus')}` }, timeout: 60_000 });
    assert.ok(held.length > 0, 'the child connected to the silent bus');
    assert.deepEqual(JSON.parse(r.stdout.trim()), { code: 'ENOENT', syscall: 'sd_bus_start', bus: 'private', systemBusCode: 'ETIMEDOUT', systemBusSyscall: 'sd_bus_process' });
  } finally {
    for (const c of held) c.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the addon is built with sd-bus and refuses any method but RestartUnit/TryRestartUnit and any mode but fail/replace', (t) => {
  if (needs(t, loadNative() !== null, 'native addon (npm run install)')) return;
  if (needs(t, systemdBusProblem() === null, `the addon's D-Bus restart (libsystemd-dev, then npm run install): ${systemdBusProblem() ?? ''}`)) return;
  const addon = loadNative() as SystemdBusAddon;
  const call = (...a: unknown[]): Promise<unknown> => (addon.restartUnitAsync as unknown as (...b: unknown[]) => Promise<unknown>).apply(addon, a);
  for (const args of [['StopUnit', 'x.service', 'fail', 1000], ['RestartUnit', 'x.service', 'isolate', 1000], ['RestartUnit', '', 'fail', 1000], ['RestartUnit', 'x.service', 'fail', 0]]) {
    assert.throws(() => call(...args), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARG_VALUE', JSON.stringify(args));
  }
  assert.throws(() => call('RestartUnit', 'x\0.service', 'fail', 1000), TypeError);
  assert.throws(() => call('RestartUnit', 'x.service', 'fail'), TypeError);
});

// A child in a mount namespace of its own where /run/systemd is an empty tmpfs (no private socket),
// its system bus at `busAddress`, running `script` (an ES module) with node.
function hiddenSystemdArgs(script: string): string[] {
  return ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /run/systemd 2>/dev/null || mount -t tmpfs none /run; exec "$@"', 'sh', process.execPath, '--input-type=module', '-e', script];
}

test('with neither systemd\'s private socket nor a system bus, a restart falls back to systemctl and names why', (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  if (needs(t, systemdBusProblem() === null, 'the addon\'s D-Bus restart (libsystemd-dev)')) return;
  const systemctlJs = fileURLToPath(new URL('../../src/adapters/systemctl.js', import.meta.url));
  const busJs = fileURLToPath(new URL('../../src/adapters/systemd-bus.js', import.meta.url));
  const script = `
    const { restartOverBus } = await import(${JSON.stringify(busJs)});
    const { queueRestart } = await import(${JSON.stringify(systemctlJs)});
    const bus = await restartOverBus('sentinel-test-none.service', 'restart', 2000);
    const q = await queueRestart('sentinel-test-none.service', 5000).then((r) => ({ ok: r }), (e) => ({ error: e.code + ' ' + e.message }));
    console.log(JSON.stringify({ bus, q }));`;
  // the system bus at an address that does not exist
  const r = spawnSync('unshare', hiddenSystemdArgs(script), {
    encoding: 'utf8',
    env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent-sentinel-test-bus' },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { bus: { fallback?: string }; q: { error?: string; ok?: unknown } };
  assert.match(out.bus.fallback ?? '', /ENOENT.*sd_bus_start/, r.stdout);
  // the fallback ran the systemctl process, which cannot reach systemd either
  assert.match(out.q.error ?? '', /^unavailable systemctl restart --no-block sentinel-test-none\.service failed/, r.stdout);
});

test('the systemctl fallback\'s failures: no systemctl is not-found, "access denied" not-permitted (its first line), a destructive transaction is a refusal', (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  const systemctlJs = fileURLToPath(new URL('../../src/adapters/systemctl.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-systemctl-'));
  try {
    // a systemctl that answers as systemd 252's does for a denied and for a refused restart ($5: the unit)
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'systemctl'), `#!/bin/sh
case "$5" in
  denied.service) printf 'Failed to restart denied.service: Access denied\\nSee system logs.\\n' >&2; exit 4;;
  busy.service) echo "Failed to restart busy.service: Transaction for busy.service/restart is destructive (busy.service has 'stop' job queued, but 'restart' is included in transaction)." >&2; exit 1;;
esac
exit 1
`, { mode: 0o755 });
    const script = `
      const { queueRestart } = await import(${JSON.stringify(systemctlJs)});
      const q = (unit) => queueRestart(unit, 5000).then((r) => ({ queued: r.queued, reason: r.reason, via: r.via }), (e) => ({ error: e.code + ' ' + e.message }));
      process.env.PATH = ${JSON.stringify(join(dir, 'none'))};
      const missing = await q('sentinel-test-none.service');
      process.env.PATH = ${JSON.stringify(join(dir, 'bin'))};
      console.log(JSON.stringify({ missing, denied: await q('denied.service'), busy: await q('busy.service') }));`;
    const r = spawnSync('unshare', hiddenSystemdArgs(script), { encoding: 'utf8', env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent-sentinel-test-bus' }, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<'missing' | 'denied' | 'busy', { error?: string; queued?: boolean; reason?: string; via?: string }>;
    assert.match(out.missing.error ?? '', /^not-found systemctl restart --no-block sentinel-test-none\.service failed: /, r.stdout);
    assert.equal(out.denied.error, 'not-permitted systemctl restart --no-block denied.service failed: Failed to restart denied.service: Access denied', r.stdout);
    assert.deepEqual(out.busy, { queued: false, reason: "Failed to restart busy.service: Transaction for busy.service/restart is destructive (busy.service has 'stop' job queued, but 'restart' is included in transaction).", via: 'systemctl' }, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bus that accepts the connection and never answers holds the restart no longer than its timeout (not sd-bus\'s 90 s handshake)', async (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  if (needs(t, systemdBusProblem() === null, 'the addon\'s D-Bus restart (libsystemd-dev)')) return;
  await silentBusCall("restartUnitAsync('RestartUnit', 'sentinel-test-none.service', 'fail', 1000)");
});

test('a connection lost after the restart call was written is not taken as "not asked": the unit is looked at before any systemctl restart', (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  if (needs(t, systemdBusProblem() === null, 'the addon\'s D-Bus restart (libsystemd-dev)')) return;
  const nativeJs = fileURLToPath(new URL('../../src/adapters/native.js', import.meta.url));
  const systemctlJs = fileURLToPath(new URL('../../src/adapters/systemctl.js', import.meta.url));
  // A private socket of the test's own that completes the SASL handshake, then closes the connection as
  // soon as the method call arrives (as systemd's re-execution closes its private connections).
  const script = `
    import { createServer } from 'node:net';
    const server = createServer((c) => {
      let text = '';
      let authed = false;
      c.on('data', (d) => {
        if (authed) return c.destroy();
        text += d.toString('latin1');
        const end = text.indexOf('BEGIN\\r\\n');
        if (end < 0) return;
        authed = true;
        // the client sent AUTH EXTERNAL, DATA, NEGOTIATE_UNIX_FD, BEGIN at once: the server's side of each
        c.write('DATA\\r\\nOK 0123456789abcdef0123456789abcdef\\r\\nAGREE_UNIX_FD\\r\\n');
        if (text.length > end + 7) c.destroy();
      });
    });
    await new Promise((r) => server.listen('/run/systemd/private', r));
    const { loadNative } = await import(${JSON.stringify(nativeJs)});
    const { queueRestart } = await import(${JSON.stringify(systemctlJs)});
    const raw = await loadNative().restartUnitAsync('RestartUnit', 'sentinel-test-none.service', 'fail', 5000).then((v) => ({ ok: v }), (e) => ({ code: e.code, syscall: e.syscall, sent: e.sent, dbusName: e.dbusName }));
    const q = await queueRestart('sentinel-test-none.service', 5000).then((r) => ({ ok: r }), (e) => ({ error: e.message }));
    server.close();
    console.log(JSON.stringify({ raw, q }));`;
  const r = spawnSync('unshare', hiddenSystemdArgs(script), { encoding: 'utf8', env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent-sentinel-test-bus' }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { raw: { code?: string; syscall?: string; sent?: boolean; dbusName?: string }; q: { error?: string } };
  assert.equal(out.raw.syscall, 'sd_bus_call', r.stdout);
  assert.equal(out.raw.sent, true, r.stdout);
  // sd-bus's own name for the lost connection, not an answer of systemd's
  assert.equal(out.raw.dbusName, 'org.freedesktop.DBus.Error.Disconnected', r.stdout);
  // queueRestart read the unit's state (systemctl show, which cannot reach systemd here) instead of restarting again
  assert.match(out.q.error ?? '', /^systemctl show .*sentinel-test-none\.service failed/, r.stdout);
});

test('the unit state read: built in beside the restart, and it refuses an empty unit, one with a character no unit name has, a zero timeout and bounds over 10 minutes', (t) => {
  if (needs(t, unitBusProblem() === null, `the addon's D-Bus unit read (libsystemd-dev, then npm run install): ${unitBusProblem() ?? ''}`)) return;
  const addon = loadNative() as UnitStateAddon;
  const call = (...a: unknown[]): Promise<unknown> => (addon.unitStateAsync as unknown as (...b: unknown[]) => Promise<unknown>).apply(addon, a);
  for (const args of [['', 1000, 0, ''], ['x/../y.service', 1000, 0, ''], ['\u00e9.service', 1000, 0, ''], ['x.service', 0, 0, ''], ['x.service', 600_001, 0, ''], ['x.service', 1000, 600_001, '']]) {
    assert.throws(() => call(...args), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_ARG_VALUE', JSON.stringify(args));
  }
  assert.throws(() => call('x.service', 1000, 0), TypeError);
  assert.throws(() => call('x.service', 1000, 0, 'k'.repeat(300)), TypeError);
});

test('with neither systemd\'s private socket nor a system bus, the unit is read with systemctl show, and the bus\'s failure is named', (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  if (needs(t, unitBusProblem() === null, 'the addon\'s D-Bus unit read (libsystemd-dev)')) return;
  const busJs = fileURLToPath(new URL('../../src/adapters/systemd-unit-bus.js', import.meta.url));
  const systemctlJs = fileURLToPath(new URL('../../src/adapters/systemctl.js', import.meta.url));
  const script = `
    const { unitStateOverBus } = await import(${JSON.stringify(busJs)});
    const { unitState } = await import(${JSON.stringify(systemctlJs)});
    const bus = await unitStateOverBus('sentinel-test-none.service', { timeoutMs: 2000 });
    const st = await unitState('sentinel-test-none.service', { waitMs: 50, known: 'x' }).then((r) => ({ ok: r }), (e) => ({ error: e.code + ' ' + e.message }));
    console.log(JSON.stringify({ bus, st }));`;
  const r = spawnSync('unshare', hiddenSystemdArgs(script), { encoding: 'utf8', env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: 'unix:path=/nonexistent-sentinel-test-bus' }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { bus: { fallback?: string }; st: { error?: string } };
  assert.match(out.bus.fallback ?? '', /ENOENT.*sd_bus_start.*the system bus: ENOENT/, r.stdout);
  // the fallback ran the systemctl process, which cannot reach systemd either
  assert.match(out.st.error ?? '', /^unavailable systemctl show .*sentinel-test-none\.service failed/, r.stdout);
});

test('a bus that accepts the connection and never answers holds a unit read no longer than its timeout', async (t) => {
  if (needs(t, isRoot(), 'root (a mount namespace hiding /run/systemd)')) return;
  if (needs(t, unitBusProblem() === null, 'the addon\'s D-Bus unit read (libsystemd-dev)')) return;
  await silentBusCall("unitStateAsync('sentinel-test-none.service', 1000, 60000, '')");
});
