// The unit files in systemd/: clean under `systemd-analyze verify --recursive-errors=yes`, the sentinel's hardening
// exposure held at 3.0 or lower (figure printed), and `sentinel install-units` / `--uninstall` against a temp prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { renderUnit, SAMPLE_BACKEND_DROP_IN, SAMPLE_UNITS, UNIT_FILES } from '../../src/daemon/install-units.js';
import { needs } from '../helpers/env.js';

const root = packageRoot();
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;

function renderedCopies(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-units-'));
  mkdirSync(join(dir, 'omnimind-backend.service.d'));
  for (const name of [...UNIT_FILES, SAMPLE_BACKEND_DROP_IN, ...SAMPLE_UNITS]) writeFileSync(join(dir, name), renderUnit(readFileSync(join(root, 'systemd', name), 'utf8'), { node: process.execPath, cli }));
  return dir;
}

test('every unit passes systemd-analyze verify --recursive-errors=yes', (t) => {
  if (needs(t, hasAnalyze, 'systemd-analyze')) return;
  const dir = renderedCopies();
  try {
    const r = spawnSync('systemd-analyze', ['verify', '--recursive-errors=yes', ...[...UNIT_FILES, ...SAMPLE_UNITS].map((n) => join(dir, n))], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /Unknown key|Failed to parse|Invalid/i, r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a typo in a unit or in the sample-backend drop-in is caught by the same check (the check can fail)', (t) => {
  if (needs(t, hasAnalyze, 'systemd-analyze')) return;
  for (const [name, from, to, unit] of [
    ['omnimind-sentinel.service', 'WatchdogSec=10s', 'WatchdogSecs=10s', 'omnimind-sentinel.service'],
    [SAMPLE_BACKEND_DROP_IN, 'OMNIMIND_SAMPLE_TREE=', 'OMNIMIND_SAMPLE_TREE\n', 'omnimind-backend.service'],
  ] as const) {
    const dir = renderedCopies();
    try {
      const p = join(dir, name);
      const text = readFileSync(p, 'utf8');
      assert.ok(text.includes(from));
      writeFileSync(p, text.replace(from, to));
      const r = spawnSync('systemd-analyze', ['verify', '--recursive-errors=yes', join(dir, unit)], { encoding: 'utf8', cwd: dir });
      assert.notEqual(r.status, 0, `a bad line in ${name} fails verification`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('the backend unit and socket: notify with a watchdog, no stop hook, port 8000 held, exposure 2.0 or lower', (t) => {
  if (needs(t, hasAnalyze, 'systemd-analyze')) return;
  const dir = renderedCopies();
  try {
    const unit = readFileSync(join(dir, 'omnimind-backend.service'), 'utf8');
    for (const key of ['Type=notify', 'NotifyAccess=main', 'Restart=always', 'Requires=omnimind-backend.socket', 'DynamicUser=yes', 'Slice=omnimind.slice', 'OOMScoreAdjust=-1000', `Environment=PYTHONPATH=${join(root, 'integrations', 'python')}`]) {
      assert.ok(unit.includes(`\n${key}\n`), key);
    }
    assert.match(unit, /^WatchdogSec=20s$/m, 'a ping every 10 s');
    assert.doesNotMatch(unit, /^ExecStop(Post)?=/m, 'nothing runs on every stop: a restart after a crash waits for no hook (the sentinel records a watchdog timeout itself)');
    assert.doesNotMatch(unit, /^(After|Wants|Requires)=.*network-online/m, 'a restart never queues behind network-online.target');
    assert.doesNotMatch(unit, /@[A-Z_]+@/, 'every placeholder rendered');
    const socket = readFileSync(join(dir, 'omnimind-backend.socket'), 'utf8');
    assert.match(socket, /^ListenStream=127\.0\.0\.1:8000$/m);
    assert.match(socket, /^Accept=no$/m);
    const dropIn = readFileSync(join(dir, SAMPLE_BACKEND_DROP_IN), 'utf8');
    assert.match(dropIn, new RegExp(`^ExecStart=/usr/bin/python3 -m omnimind_sentinel\\.serve sample_backend:app --app-dir ${root}/examples/backend`, 'm'));
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=20', join(dir, 'omnimind-backend.service')], { encoding: 'utf8', cwd: dir });
    const m = /Overall exposure level for omnimind-backend\.service: ([0-9.]+)/.exec(r.stdout);
    assert.ok(m !== null, `no exposure figure in: ${r.stdout.slice(-500)} ${r.stderr}`);
    t.diagnostic(`omnimind-backend.service exposure ${m[1]!} (threshold 2.0)`);
    assert.equal(r.status, 0, `exposure ${m[1]!} above 2.0`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sample MCP worker unit: notify with a watchdog in the slice as a DynamicUser, exposure 2.0 or lower', (t) => {
  if (needs(t, hasAnalyze, 'systemd-analyze')) return;
  const dir = renderedCopies();
  try {
    const unit = readFileSync(join(dir, 'omnimind-mcp-worker.service'), 'utf8');
    for (const key of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=20s', 'Restart=always', 'DynamicUser=yes', 'Slice=omnimind.slice', 'OOMScoreAdjust=-1000', `Environment=PYTHONPATH=${join(root, 'integrations', 'python')}`]) {
      assert.ok(unit.includes(`\n${key}\n`), key);
    }
    assert.match(unit, new RegExp(`^ExecStart=/usr/bin/python3 ${root}/examples/mcp-worker/mcp_worker\\.py --host 127\\.0\\.0\\.1 --port 8100 `, 'm'));
    assert.doesNotMatch(unit, /@[A-Z_]+@/, 'every placeholder rendered');
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=20', join(dir, 'omnimind-mcp-worker.service')], { encoding: 'utf8', cwd: dir });
    const m = /Overall exposure level for omnimind-mcp-worker\.service: ([0-9.]+)/.exec(r.stdout);
    assert.ok(m !== null, `no exposure figure in: ${r.stdout.slice(-500)} ${r.stderr}`);
    t.diagnostic(`omnimind-mcp-worker.service exposure ${m[1]!} (threshold 2.0)`);
    assert.equal(r.status, 0, `exposure ${m[1]!} above 2.0`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('omnimind-sentinel.service exposure is 3.0 or lower (systemd-analyze security --offline)', (t) => {
  if (needs(t, hasAnalyze, 'systemd-analyze')) return;
  const dir = renderedCopies();
  try {
    // systemd 252 takes the threshold in tenths (0-100); 30 means an exposure of 3.0.
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=30', join(dir, 'omnimind-sentinel.service')], { encoding: 'utf8', cwd: dir });
    const m = /Overall exposure level for omnimind-sentinel\.service: ([0-9.]+)/.exec(r.stdout);
    assert.ok(m !== null, `no exposure figure in: ${r.stdout.slice(-500)} ${r.stderr}`);
    const exposure = Number(m[1]);
    t.diagnostic(`omnimind-sentinel.service exposure ${String(exposure)} (threshold 3.0)`);
    console.log(`systemd-analyze security: omnimind-sentinel.service exposure ${String(exposure)}`);
    assert.ok(exposure <= 3.0, `exposure ${String(exposure)} above 3.0`);
    assert.equal(r.status, 0, r.stderr);
    const unit = readFileSync(join(dir, 'omnimind-sentinel.service'), 'utf8');
    assert.match(unit, /^CapabilityBoundingSet=.*CAP_LINUX_IMMUTABLE/m);
    assert.doesNotMatch(unit, /CAP_SYS_ADMIN/, 'the eBPF engine runs with CAP_BPF + CAP_PERFMON; no CAP_SYS_ADMIN');
    for (const key of ['Type=notify', 'NotifyAccess=main', 'Restart=on-failure', 'OOMScoreAdjust=-1000', 'Slice=omnimind.slice', 'ProtectSystem=strict', 'NoNewPrivileges=yes']) assert.ok(unit.includes(`\n${key}\n`), key);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sentinel install-units copies the units with this node and CLI; --uninstall removes them', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'sentinel-install-'));
  try {
    const r = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { files: string[] };
    assert.deepEqual(out.files.sort(), UNIT_FILES.map((n) => join(prefix, n)).sort());
    const unit = readFileSync(join(prefix, 'omnimind-sentinel.service'), 'utf8');
    assert.ok(unit.includes(`ExecStart=${process.execPath} --max-semi-space-size=1 ${cli} daemon --config /etc/omnimind-sentinel/sentinel.json`), unit);
    assert.doesNotMatch(unit, /@NODE@|@SENTINEL_CLI@|@DOCS@/);
    const docs = [...unit.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1]!);
    assert.ok(docs.length > 0, 'Documentation= names the project docs');
    for (const d of docs) assert.ok(existsSync(d), `Documentation= points at an existing file: ${d}`);
    assert.match(unit, /^SyslogIdentifier=omnimind-sentinel$/m);
    const u = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--uninstall', '--no-reload'], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    for (const n of UNIT_FILES) assert.equal(existsSync(join(prefix, n)), false, n);
    assert.deepEqual(readdirSync(prefix), []);
    // --sample-backend adds the drop-in; a plain install afterwards takes it away again.
    const s = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload', '--sample-backend', '--json'], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    assert.deepEqual((JSON.parse(s.stdout) as { files: string[] }).files.sort(), [...UNIT_FILES, SAMPLE_BACKEND_DROP_IN, ...SAMPLE_UNITS].map((n) => join(prefix, n)).sort());
    assert.match(readFileSync(join(prefix, SAMPLE_BACKEND_DROP_IN), 'utf8'), /sample_backend:app/);
    assert.equal(spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload'], { encoding: 'utf8' }).status, 0);
    assert.equal(existsSync(join(prefix, 'omnimind-backend.service.d')), false, 'the plain install removed the sample drop-in');
    for (const n of SAMPLE_UNITS) assert.equal(existsSync(join(prefix, n)), true, `the plain install left the sample unit ${n} alone`);
    assert.equal(spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload', '--sample-backend'], { encoding: 'utf8' }).status, 0);
    const u2 = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--uninstall', '--no-reload', '--json'], { encoding: 'utf8' });
    assert.equal(u2.status, 0, u2.stderr);
    assert.equal((JSON.parse(u2.stdout) as { files: string[] }).files.length, UNIT_FILES.length + 1 + SAMPLE_UNITS.length);
    assert.deepEqual(readdirSync(prefix), [], 'uninstall removed the drop-in and its directory');
    const bad = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload', '--node', '/nonexistent/node'], { encoding: 'utf8' });
    assert.equal(bad.status, 2, 'a missing ExecStart binary is refused');
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});

test('install-units says so when systemd could not re-read the units (daemon-reload failed): written, exit 0, one warning naming what to run', () => {
  // Real systemctl: on a host where systemd runs the reload works and nothing is said; where it does not run, it fails.
  const reloads = spawnSync('systemctl', ['daemon-reload'], { encoding: 'utf8' }).status === 0;
  const prefix = mkdtempSync(join(tmpdir(), 'sentinel-reload-'));
  try {
    const r = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(prefix, 'omnimind-sentinel.service')), 'the units are written either way');
    if (reloads) assert.doesNotMatch(r.stderr, /daemon-reload/, r.stderr);
    else assert.match(r.stderr, /^sentinel: warning: systemctl daemon-reload failed \(.+\): systemd has not read these units; run `systemctl daemon-reload` once it runs, before enabling them\n$/m, r.stderr);
    const j = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--json'], { encoding: 'utf8' });
    assert.equal(j.status, 0, j.stderr);
    const warnings = (JSON.parse(j.stdout) as { warnings: string[] }).warnings;
    assert.equal(warnings.some((w) => w.startsWith('systemctl daemon-reload failed')), !reloads, warnings.join('; '));
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});

test('install-units --uninstall --keep-files leaves the unit files; --keep-files alone is a usage error', () => {
  const prefix = mkdtempSync(join(tmpdir(), 'sentinel-keep-'));
  try {
    assert.equal(spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--no-reload', '--sample-backend'], { encoding: 'utf8' }).status, 0);
    const before = readdirSync(prefix, { recursive: true }).sort();
    const k = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--uninstall', '--keep-files', '--no-reload', '--json'], { encoding: 'utf8' });
    assert.equal(k.status, 0, k.stderr);
    assert.deepEqual((JSON.parse(k.stdout) as { files: string[] }).files, []);
    assert.deepEqual(readdirSync(prefix, { recursive: true }).sort(), before);
    const bad = spawnSync(process.execPath, [cli, 'install-units', '--prefix', prefix, '--keep-files', '--no-reload'], { encoding: 'utf8' });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /^sentinel: usage: --keep-files goes with --uninstall \(--keep-files\)\n$/);
    assert.deepEqual(readdirSync(prefix, { recursive: true }).sort(), before, 'nothing installed or removed');
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});

test('the package\'s purge removes every file install-units writes, by the same names', () => {
  const postrm = readFileSync(join(root, 'packaging', 'debian', 'postrm'), 'utf8');
  const list = /for name in ([^;]*); do/.exec(postrm.replace(/\\\n/g, ' '))?.[1]?.trim().split(/\s+/) ?? [];
  assert.deepEqual(list.sort(), [...UNIT_FILES, SAMPLE_BACKEND_DROP_IN, ...SAMPLE_UNITS].sort());
  const prerm = readFileSync(join(root, 'packaging', 'debian', 'prerm'), 'utf8');
  assert.match(prerm, /^\s*if ! \/usr\/bin\/sentinel install-units --uninstall --keep-files; then$/m, 'removal runs the operator\'s own command');
});
