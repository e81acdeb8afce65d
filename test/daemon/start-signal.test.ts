// `sentinel daemon` stopped by SIGTERM while it is still starting: a clean stop (exit 0, no death by the signal)
// with its `stop` audit record, wherever in start-up the signal lands. Two real windows, each hit many times:
// the moment its first log line appears (before the audit log is open) and the moment the control socket
// appears (listening, the watches and sd-notify still to come).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../helpers/daemon-harness.js';

after(() => cleanupDaemonFiles());
const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const ROUNDS = 12;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Why: one daemon, SIGTERM sent as soon as `ready` says so (checked at every turn of the event loop, no sleep).
function runUntil(configPath: string, ready: (stdout: string) => boolean): Promise<Run> {
  const child = spawn(process.execPath, [cli, 'daemon', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  let sent = false;
  const deadline = Date.now() + 60_000;
  const poll = (): void => {
    if (sent || child.exitCode !== null || child.signalCode !== null) return;
    if (ready(stdout)) {
      sent = true;
      child.kill('SIGTERM');
      return;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      return;
    }
    setImmediate(poll);
  };
  setImmediate(poll);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

function auditKinds(auditPath: string): { kind: string; reason?: string }[] {
  return readFileSync(auditPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; reason?: string })
    .map((r) => ({ kind: r.kind, ...(r.reason !== undefined ? { reason: r.reason } : {}) }));
}

async function stopsCleanly(label: string, when: (socket: string) => (stdout: string) => boolean): Promise<void> {
  const files = await prepareDaemonFiles(label);
  for (let i = 0; i < ROUNDS; i++) {
    const run = await runUntil(files.configPath, when(files.socket));
    assert.equal(run.signal, null, `round ${String(i)}: the daemon died by ${String(run.signal)} instead of stopping; stdout: ${run.stdout.slice(-600)}`);
    assert.equal(run.code, 0, `round ${String(i)}: exit ${String(run.code)}; stderr: ${run.stderr}`);
    assert.match(run.stdout, /"event":"stopped","reason":"SIGTERM"/, `round ${String(i)}: the stop is logged`);
    assert.equal(existsSync(files.socket), false, `round ${String(i)}: the control socket is removed`);
    const kinds = auditKinds(files.auditPath);
    const last = kinds[kinds.length - 1];
    assert.deepEqual(last, { kind: 'stop', reason: 'SIGTERM' }, `round ${String(i)}: the audit log ends with the stop record: ${JSON.stringify(kinds.slice(-3))}`);
  }
  const kinds = auditKinds(files.auditPath).map((k) => k.kind);
  assert.equal(kinds.filter((k) => k === 'start').length, ROUNDS, 'one start record a run');
  assert.equal(kinds.filter((k) => k === 'stop').length, ROUNDS, 'one stop record a run');
}

test('SIGTERM the moment the control socket appears: exit 0 and a stop record, every time', { timeout: 240_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  await stopsCleanly('sigsock', (socket) => () => existsSync(socket));
});

test('SIGTERM at the first log line, before the audit log is open: exit 0 and a stop record, every time', { timeout: 240_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  await stopsCleanly('sigfirst', () => (stdout) => stdout.includes('"event":"start"'));
});

test('a start-up that does not finish (the audit log a FIFO nobody writes) still ends on a second SIGTERM', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('sigblocked');
  const fifo = join(files.dir, 'audit.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  writeFileSync(files.configPath, JSON.stringify({ ...files.config, audit: { path: fifo } }));
  const child = spawn(process.execPath, [cli, 'daemon', '--config', files.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  try {
    await waitFor('the first log line', 30_000, () => (stdout.includes('"event":"start"') ? true : null));
    // Held: the start-up is blocked opening the audit log, so it never reaches a checkpoint. Then more of them.
    const repeat = setInterval(() => child.kill('SIGTERM'), 100);
    const gone = await Promise.race([closed, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    clearInterval(repeat);
    assert.notEqual(gone, null, 'still running 30 s after repeated SIGTERMs');
    assert.equal(gone?.signal, 'SIGTERM', `ended by the second SIGTERM: ${JSON.stringify(gone)}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
