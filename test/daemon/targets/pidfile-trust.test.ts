// Whose PID a pid file may name (like systemd's PIDFile= rule): a pid file written by an unprivileged
// service account names only that account's processes; never PID 1 or the sentinel itself; a symlink
// is not followed. A refused PID is never adopted, so the sentinel never kills it as root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRoot, needs } from '../../helpers/env.js';
import { alive, supervise } from '../../helpers/supervise.js';

const NOBODY = 65534;
const started: ChildProcess[] = [];
const dirs: string[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A `sleep` as root, or as nobody through setpriv (a real unprivileged process). */
function sleeper(asNobody: boolean): number {
  const argv = asNobody ? ['setpriv', `--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups', 'sleep', '600'] : ['sleep', '600'];
  const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  started.push(c);
  assert.ok(c.pid !== undefined);
  return c.pid;
}

/** The service's own run directory (owned by nobody, like /run/<app>/), its pid file written by nobody. */
function serviceDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-pidtrust-'));
  dirs.push(dir);
  chmodSync(dir, 0o755);
  const run = join(dir, 'run');
  writeFileSync(join(dir, '.keep'), '');
  execFileSync('mkdir', ['-m', '0755', run]);
  chownSync(run, NOBODY, NOBODY);
  return run;
}

function writeAsNobody(file: string, text: string): void {
  execFileSync('setpriv', [`--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups', 'sh', '-c', 'printf %s "$1" > "$2"', 'sh', text, file]);
}

const spec = (pidFile: string): { name: string; pidFile: string; restart: string[]; pidFileWaitMs: number; budget: { burst: number; intervalMs: number }; backoff: { initialMs: number; maxMs: number } } => ({
  name: 'legacy',
  pidFile,
  restart: ['true'],
  pidFileWaitMs: 0,
  budget: { burst: 1, intervalMs: 60_000 },
  backoff: { initialMs: 0, maxMs: 0 },
});

async function refused(t: Parameters<typeof supervise>[0], pidFile: string, victim: number, why: RegExp): Promise<void> {
  const { sup, rec } = await supervise(t, [spec(pidFile)]);
  assert.ok(!sup.pids().includes(victim), `PID ${String(victim)} was adopted`);
  const ex = await rec.next((e) => e.event === 'budget-exhausted', 10_000, 'the target given up', 0);
  assert.match(String(ex.reason), why);
  assert.match(sup.status()[0]?.failedReason ?? '', why);
  assert.deepEqual(sup.pids(), []);
  assert.ok(victim === 1 || victim === process.pid || alive(victim), 'the named process was not killed');
}

test('pid file written by an unprivileged account naming a root process: refused, not adopted, not killed', async (t) => {
  if (needs(t, isRoot(), 'root (a pid file owned by nobody)')) return;
  const victim = sleeper(false);
  const file = join(serviceDir(), 'app.pid');
  writeAsNobody(file, `${String(victim)}\n`);
  await refused(t, file, victim, /owned by uid 65534.*PID \d+ runs as uid 0/);
});

test('pid file written by an unprivileged account naming its own process: adopted', async (t) => {
  if (needs(t, isRoot(), 'root (setpriv)')) return;
  const own = sleeper(true);
  const file = join(serviceDir(), 'app.pid');
  writeAsNobody(file, `${String(own)}\n`);
  const { sup } = await supervise(t, [spec(file)]);
  assert.deepEqual(sup.pids(), [own]);
});

test('pid file naming PID 1 or the sentinel itself: refused even when root wrote it', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-pidtrust-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'init.pid'), '1\n');
  await refused(t, join(dir, 'init.pid'), 1, /PID 1/);
  writeFileSync(join(dir, 'self.pid'), `${String(process.pid)}\n`);
  await refused(t, join(dir, 'self.pid'), process.pid, /the sentinel's own PID/);
});

test('pid file that is a symlink (to a root-owned pid file) is refused, not followed', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const victim = sleeper(false);
  const run = serviceDir();
  const rootFile = join(run, '..', 'root-service.pid');
  writeFileSync(rootFile, `${String(victim)}\n`);
  execFileSync('setpriv', [`--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups', 'ln', '-s', rootFile, join(run, 'app.pid')]);
  await refused(t, join(run, 'app.pid'), victim, /symlink/);
});

test('pid file owned by root below a directory an unprivileged account controls: refused', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const victim = sleeper(false);
  const run = serviceDir();
  const realDir = mkdtempSync(join(tmpdir(), 'sentinel-pidtrust-root-'));
  dirs.push(realDir);
  writeFileSync(join(realDir, 'app.pid'), `${String(victim)}\n`);
  // nobody's run/ holds a link to a root directory holding a root-owned pid file of the same name
  execFileSync('setpriv', [`--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups', 'ln', '-s', realDir, join(run, 'sub')]);
  await refused(t, join(run, 'sub', 'app.pid'), victim, /directory above it/);
});

test('a hard link to a root-owned pid file in the service account\'s directory is refused (hosts with fs.protected_hardlinks=0)', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const victim = sleeper(false);
  const run = serviceDir();
  const rootFile = join(run, '..', 'sshd.pid');
  writeFileSync(rootFile, `${String(victim)}\n`);
  // Root makes the link, as the account could where protected_hardlinks is off.
  linkSync(rootFile, join(run, 'app.pid'));
  await refused(t, join(run, 'app.pid'), victim, /2 links/);
});

test('a root-owned pid file in a directory the service account owns names only that account\'s processes', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const victim = sleeper(false);
  const run = serviceDir();
  writeFileSync(join(run, 'app.pid'), `${String(victim)}\n`);
  await refused(t, join(run, 'app.pid'), victim, /directory is owned by uid 65534.*PID \d+ runs as uid 0/);
});

test('a pid file\'s own directory that an unprivileged account made a symlink (in a sticky shared directory) is refused, not followed', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const victim = sleeper(false);
  const base = mkdtempSync(join(tmpdir(), 'sentinel-pidtrust-'));
  dirs.push(base);
  chmodSync(base, 0o755);
  const shared = join(base, 'shared');
  const rootDir = join(base, 'rootdir');
  execFileSync('mkdir', ['-m', '1777', shared]);
  execFileSync('mkdir', ['-m', '0755', rootDir]);
  writeFileSync(join(rootDir, 'app.pid'), `${String(victim)}\n`);
  // The sticky directory lets nobody add an entry: a symlink to root's directory, named as the configured one.
  execFileSync('setpriv', [`--reuid=${String(NOBODY)}`, `--regid=${String(NOBODY)}`, '--clear-groups', 'ln', '-s', rootDir, join(shared, 'app')]);
  await refused(t, join(shared, 'app', 'app.pid'), victim, /symlink owned by uid 65534/);
});

test('a pid file\'s directory reached through root\'s own symlink is judged where it leads', async (t) => {
  if (needs(t, isRoot(), 'root (setpriv)')) return;
  const victim = sleeper(false);
  const run = serviceDir();
  writeAsNobody(join(run, 'app.pid'), `${String(victim)}\n`);
  const base = mkdtempSync(join(tmpdir(), 'sentinel-pidtrust-'));
  dirs.push(base);
  // Like /var/run -> /run: root's symlink is followed, and the directory it leads to (nobody's) decides.
  execFileSync('ln', ['-s', run, join(base, 'run')]);
  await refused(t, join(base, 'run', 'app.pid'), victim, /owned by uid 65534.*PID \d+ runs as uid 0/);
  const own = sleeper(true);
  writeAsNobody(join(run, 'own.pid'), `${String(own)}\n`);
  const { sup } = await supervise(t, [spec(join(base, 'run', 'own.pid'))]);
  assert.deepEqual(sup.pids(), [own]);
});
