// The commands that make a temporary directory (`demo` for its vault, `sign-and-deploy` for the bundle it signs)
// under a TMPDIR they cannot use: one line naming TMPDIR and its value, saying what is wrong with it and what to
// do, not Node's raw `ENOENT: no such file or directory, mkdtemp '…'`; its exit code is the README's 2. A demo
// whose temporary vault fills its filesystem says so and names TMPDIR too.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertFails, sentinel, type CliResult } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { canMountTmpfs, mountTmpfs, unmountAll } from '../helpers/tmpfs.js';

after(() => unmountAll());
const RAW = /E[A-Z]+: [a-z ,-]+, mkdtemp '/;

function namesTmpdir(r: CliResult, value: string, what: RegExp): void {
  const line = r.errLines[0] ?? '';
  assert.doesNotMatch(line, RAW, `not Node's raw text: ${line}`);
  assert.ok(line.endsWith(`(TMPDIR=${value})`), `names TMPDIR and its value: ${line}`);
  assert.match(line, what, line);
  assert.match(line, /set TMPDIR to|unset TMPDIR|TMPDIR to a/, `says what to do: ${line}`);
}

test('demo with TMPDIR naming a missing directory, or a file: one line naming TMPDIR, exit 2', { timeout: 60_000 }, async () => {
  const missing = join(tmpdir(), `sentinel-no-such-dir-${String(process.pid)}`, 'tmp');
  const r = await sentinel(['demo', '--no-recovery'], { env: { TMPDIR: missing } });
  assertFails(r, 'not-found');
  namesTmpdir(r, missing, /does not exist/);
  const notDir = join(process.cwd(), 'package.json');
  const f = await sentinel(['demo', '--no-recovery'], { env: { TMPDIR: notDir } });
  assertFails(f, 'not-found');
  namesTmpdir(f, notDir, /not a directory/);
});

test('demo with TMPDIR on a read-only filesystem: one line naming TMPDIR, exit 2', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot() && canMountTmpfs(), 'root and tmpfs')) return;
  const ro = mountTmpfs('ro-tmpdir', 65_536);
  assert.equal(spawnSync('mount', ['-o', 'remount,ro', ro.path]).status, 0, 'remount read-only');
  const r = await sentinel(['demo', '--no-recovery'], { env: { TMPDIR: ro.path } });
  assertFails(r, 'not-permitted');
  namesTmpdir(r, ro.path, /read-only/);
});

test("demo whose temporary vault fills TMPDIR's filesystem: the failed step says no space is left and names TMPDIR, exit 2, nothing left", { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot() && canMountTmpfs(), 'root and tmpfs')) return;
  const small = mountTmpfs('full-tmpdir', 65_536);
  const r = await sentinel(['demo', '--no-recovery'], { env: { TMPDIR: small.path }, timeoutMs: 90_000 });
  assertFails(r, 'io');
  const line = r.errLines[0]!;
  assert.match(line, /no space left/, line);
  assert.match(line, new RegExp(`TMPDIR=${small.path.replaceAll('/', '\\/')}`), `names TMPDIR: ${line}`);
  assert.deepEqual(spawnSync('ls', ['-A', small.path], { encoding: 'utf8' }).stdout.trim(), '', 'the demo removed its temporary vault');
});

test('sign-and-deploy with TMPDIR naming a missing directory: one line naming TMPDIR, exit 2, the vault unchanged', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (vault init)')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-tmpdir-sad-'));
  try {
    assert.equal((await sentinel(['keygen', '--out', join(dir, 'k')])).code, 0);
    const init = await sentinel(['vault', 'init', join(dir, 'vault'), '--trust', join(dir, 'k.pub')]);
    assert.equal(init.code, 0, init.stderr);
    const missing = join(dir, 'gone');
    const r = await sentinel(['sign-and-deploy', join(process.cwd(), 'examples', 'phi-engine'), '--key', join(dir, 'k.key'), '--vault', join(dir, 'vault')], { env: { TMPDIR: missing } });
    assertFails(r, 'not-found');
    namesTmpdir(r, missing, /does not exist/);
    const st = await sentinel(['vault', 'status', join(dir, 'vault'), '--json']);
    assert.equal((JSON.parse(st.stdout) as { version: unknown }).version, null, st.stdout);
  } finally {
    spawnSync('chattr', ['-R', '-f', '-i', dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});
