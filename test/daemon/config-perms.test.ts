// The daemon's configuration file and its trusted key files decide what runs as root (targets[].command) and
// whose bundles go live: one that others can write, or that lies below a directory others can write, is refused
// as insecure-path, naming it, with exit 3 (the unit does not restart a refused configuration), at start before
// anything is opened, and on reload (the old configuration stays).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDaemonConfig } from '../../src/daemon/config.js';
import { loadTrust } from '../../src/daemon/trust-anchors.js';
import { needs, isRoot } from '../helpers/env.js';
import { sentinel } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, prepareDaemonFiles, startTestDaemon } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());

async function refused(args: string[], where: string, auditPath: string, cwd?: string): Promise<void> {
  const r = await sentinel(['daemon', ...args], { timeoutMs: 30_000, ...(cwd !== undefined ? { cwd } : {}) });
  assert.equal(r.code, 3, `exit 3 (a refused configuration): ${r.stdout}\n${r.stderr}`);
  assert.equal(r.errLines.length, 1, r.stderr);
  assert.match(r.errLines[0]!, /^sentinel: insecure-path: /, r.stderr);
  assert.ok(r.errLines[0]!.endsWith(`(${where})`), `names ${where}: ${r.stderr}`);
  assert.equal(existsSync(auditPath), false, 'nothing opened or written: no audit log');
}

test('sentinel daemon refuses a configuration or trusted key others can write, exit 3, before anything is opened', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const f = await prepareDaemonFiles('config-perms');
  chmodSync(f.configPath, 0o666);
  await refused(['--config', f.configPath], f.configPath, f.auditPath);
  // Named relative to the working directory, as an operator types it.
  await refused(['--config', 'sentinel.json'], 'sentinel.json', f.auditPath, f.dir);
  chmodSync(f.configPath, 0o644);
  // The same file below a directory others can write (no sticky bit): anyone could replace it.
  const open = join(f.dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const moved = join(open, 'sentinel.json');
  copyFileSync(f.configPath, moved);
  await refused(['--config', moved], open, f.auditPath);
  // A trusted key others can write, from the file and from --trust.
  chmodSync(f.pubPath, 0o666);
  await refused(['--config', f.configPath], f.pubPath, f.auditPath);
  await refused(['--vault', f.tv.path, '--trust', f.pubPath, '--socket', f.socket, '--audit-log', f.auditPath, '--state-dir', join(f.dir, 'state')], f.pubPath, f.auditPath);
  chmodSync(f.pubPath, 0o644);
});

test('sentinel reload refuses a configuration others can write, exit 3, and the daemon keeps the old one', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('config-perms-reload');
  try {
    writeFileSync(d.configPath, JSON.stringify({ ...JSON.parse(JSON.stringify(d.handle.config)), vault: { ...d.handle.config.vault, onTamper: 'alert' } }));
    chmodSync(d.configPath, 0o666);
    const r = await sentinel(['reload', '--socket', d.socket]);
    assert.equal(r.code, 3, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /insecure-path/, r.stderr);
    assert.ok(r.stderr.includes(d.configPath), r.stderr);
    assert.equal(d.handle.config.vault.onTamper, 'heal', 'the old configuration stays');
  } finally {
    await d.handle.stop('test');
  }
});

// Someone else's file appearing at the configured name between the daemon's check and its read: in a sticky
// directory (which the rule accepts) any user can create that name. The file that is read must be the one
// that was checked.
test('a configuration or key file created by another user at the checked name, in a sticky directory, is never read', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (another user to act as)')) return;
  const f = await prepareDaemonFiles('config-race');
  const sticky = mkdtempSync(join(tmpdir(), 'sentinel-config-race-'));
  chmodSync(sticky, 0o1777);
  const attacker = (target: string, text: string): ChildProcess => {
    const script = [
      'import os, sys, time',
      'tgt, text = sys.argv[1], sys.argv[2]',
      "src = tgt + '.theirs'",
      "with open(src, 'w') as f: f.write(text)",
      'end = time.time() + 60',
      'while time.time() < end and os.path.exists(os.path.dirname(tgt)):',
      '    try: os.link(src, tgt)',
      '    except FileExistsError: pass',
      '    try: os.unlink(tgt)',
      '    except FileNotFoundError: pass',
    ].join('\n');
    return spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/python3', '-c', script, target, text], { stdio: 'ignore' });
  };
  const theirs = JSON.stringify({ vault: { path: f.tv.path, trust: [f.pubPath] }, targets: [{ name: 'theirs', command: ['/bin/true'] }] });
  const configName = join(sticky, 'sentinel.json');
  let p = attacker(configName, theirs);
  let accepted = 0;
  try {
    for (let i = 0; i < 1500; i++) {
      const c = await resolveDaemonConfig(configName, {}).catch(() => null);
      if (c !== null && c.targets.some((x) => x.name === 'theirs')) accepted++;
    }
  } finally {
    p.kill('SIGKILL');
  }
  assert.equal(accepted, 0, `another user's configuration was read ${String(accepted)} times in 1500 starts`);

  const keyName = join(sticky, 'key.pub');
  const theirKey = readFileSync(f.pubPath, 'utf8');
  const config = await resolveDaemonConfig(f.configPath, {});
  config.vault.trust = [keyName];
  p = attacker(keyName, theirKey);
  try {
    for (let i = 0; i < 1500; i++) if ((await loadTrust(config).catch(() => null)) !== null) accepted++;
  } finally {
    p.kill('SIGKILL');
    rmSync(sticky, { recursive: true, force: true });
  }
  assert.equal(accepted, 0, `another user's key file was trusted ${String(accepted)} times in 1500 reloads`);
});

// A symlink another user plants at the name (this sticky directory lets anyone) would choose which root-owned
// file is the configuration or a trusted key: refused as protected_symlinks would, whatever it points to.
test('a configuration or key file named through a symlink another user owns is refused, even to a root-owned file', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (another user to act as)')) return;
  const f = await prepareDaemonFiles('config-symlink');
  const sticky = mkdtempSync(join(tmpdir(), 'sentinel-config-symlink-'));
  chmodSync(sticky, 0o1777);
  try {
    const theirs = (name: string, target: string): string => {
      const link = join(sticky, name);
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ln', '-s', target, link]);
      assert.equal(r.status, 0, String(r.stderr));
      return link;
    };
    const configLink = theirs('sentinel.json', f.configPath);
    await assert.rejects(resolveDaemonConfig(configLink, {}), (e: Error & { code?: string; where?: string }) => {
      assert.equal(e.code, 'insecure-path', e.message);
      assert.equal(e.where, configLink);
      assert.match(e.message, /symlink/);
      return true;
    });
    const config = await resolveDaemonConfig(f.configPath, {});
    config.vault.trust = [theirs('key.pub', f.pubPath)];
    await assert.rejects(loadTrust(config), (e: Error & { code?: string }) => e.code === 'insecure-path' && /symlink/.test(e.message));
    // A symlink root made there is the operator's own choice, and is followed.
    const ours = join(sticky, 'ours.json');
    symlinkSync(f.configPath, ours);
    assert.equal((await resolveDaemonConfig(ours, {})).vault.path, f.tv.path);
  } finally {
    rmSync(sticky, { recursive: true, force: true });
  }
});

// Opening is itself an action for a fifo (its blocked writer is released) or a device (a watchdog arms): a name
// another user's symlink points at such a thing is refused before anything is opened for reading.
test('a configuration named through another user\'s symlink to a fifo is refused without opening the fifo', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (another user to act as)')) return;
  const sticky = mkdtempSync(join(tmpdir(), 'sentinel-config-fifo-'));
  chmodSync(sticky, 0o1777);
  const fifo = join(sticky, 'fifo');
  const writer = { done: false };
  let p: ChildProcess | null = null;
  try {
    assert.equal(spawnSync('mkfifo', ['-m', '0644', fifo]).status, 0);
    // A writer blocks in open(2) until a reader opens the fifo.
    p = spawn('sh', ['-c', `echo x > ${fifo}`], { stdio: 'ignore' });
    p.on('exit', () => (writer.done = true));
    const link = join(sticky, 'sentinel.json');
    assert.equal(spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'ln', '-s', fifo, link]).status, 0);
    await assert.rejects(resolveDaemonConfig(link, {}), (e: Error & { code?: string }) => e.code === 'insecure-path' && /symlink/.test(e.message));
    // And root's own name for a fifo: not a regular file, refused, the fifo not opened either.
    const ours = join(sticky, 'ours.json');
    symlinkSync(fifo, ours);
    await assert.rejects(resolveDaemonConfig(ours, {}), (e: Error & { code?: string }) => e.code === 'config' && /fifo/.test(e.message));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(writer.done, false, 'the fifo was opened: its blocked writer was released');
  } finally {
    p?.kill('SIGKILL');
    rmSync(sticky, { recursive: true, force: true });
  }
});
