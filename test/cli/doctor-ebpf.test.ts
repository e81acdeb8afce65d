// doctor loads and attaches the real BPF object (as itself and with the unit's capabilities), and
// every fix it prints for the engine works when run as printed: tracefs unmounted (in a private
// mount namespace), and a package copy whose BPF object was never built.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { tracefsMounts, unitPrivileges } from '../../src/cli/doctor-ebpf.js';
import { CLI } from '../helpers/cli-harness.js';
import { needsEngine } from '../helpers/bpf.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

after(() => removeTempDirs());

interface Check { name: string; status: string; detail: string; fix?: string }

function doctor(cli = CLI, wrap: string[] = []): Check[] {
  const argv = [...wrap, process.execPath, cli, 'doctor', '--json'];
  const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  assert.ok(r.stdout.trim() !== '', `doctor printed nothing: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { checks: Check[] }).checks;
}

const find = (checks: Check[], name: string): Check => {
  const c = checks.find((x) => x.name === name);
  assert.ok(c !== undefined, `doctor has a '${name}' check: ${checks.map((x) => x.name).join(', ')}`);
  return c;
};

describe('doctor: the eBPF engine', () => {
  test('loads and attaches the real object, here and with the unit\'s capabilities', (t) => {
    if (needsEngine(t)) return;
    const checks = doctor();
    assert.equal(checks.some((c) => c.name === 'bpftrace'), false, 'bpftrace is not what the daemon uses');
    const here = find(checks, 'eBPF engine');
    assert.equal(here.status, 'ok', here.detail);
    assert.match(here.detail, /load [\d.]+ ms, attach [\d.]+ ms, .*BTF/);
    const unit = find(checks, 'eBPF engine under the unit');
    assert.equal(unit.status, 'ok', unit.detail);
    assert.match(unit.detail, /omnimind-sentinel\.service.*load [\d.]+ ms/);
    assert.equal(find(checks, 'tracefs').fix, undefined, 'no mount command for a tracefs that is mounted');
  });

  test('tracefs unmounted: degraded with the reason, and the printed fix mounts it', (t) => {
    if (needsEngine(t)) return;
    // One private mount namespace for the three steps: doctor, the fix as printed, doctor again.
    const dir = makeTempDir('doctor-tracefs');
    const script = `set -e
      for m in $(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "tracefs") print $5; break } }' /proc/self/mountinfo | sort -r); do umount "$m"; done
      ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} doctor --json > ${dir}/before.json || true
      fix=$(${JSON.stringify(process.execPath)} -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).checks.find((x) => x.name === "tracefs"); process.stdout.write(c.fix ?? "")' ${dir}/before.json)
      echo "$fix" > ${dir}/fix.txt
      sh -c "$fix"
      ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} doctor --json > ${dir}/after.json || true`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `the namespace script failed: ${r.stderr}`);
    const read = (f: string): Check[] => (JSON.parse(spawnSync('cat', [join(dir, f)], { encoding: 'utf8' }).stdout) as { checks: Check[] }).checks;
    const before = read('before.json');
    assert.equal(find(before, 'tracefs').status, 'missing');
    assert.equal(find(before, 'tracefs').fix, 'mount -t tracefs tracefs /sys/kernel/tracing');
    const engine = find(before, 'eBPF engine');
    assert.equal(engine.status, 'degraded');
    assert.match(engine.detail, /could not attach|tracepoint|No such file/i, 'the exact reason from libbpf');
    assert.equal(engine.fix, 'mount -t tracefs tracefs /sys/kernel/tracing');
    const afterFix = read('after.json');
    assert.equal(find(afterFix, 'tracefs').status, 'ok');
    assert.equal(find(afterFix, 'eBPF engine').status, 'ok', find(afterFix, 'eBPF engine').detail);
    assert.ok(tracefsMounts().length > 0, 'the host\'s own tracefs is untouched');
  });

  test('a package whose BPF object was never built: degraded, and the printed fix builds it', (t) => {
    if (needsEngine(t)) return;
    const real = packageRoot();
    const pkg = makeTempDir('doctor-nobpf');
    cpSync(join(real, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(real, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
    cpSync(join(real, 'systemd'), join(pkg, 'systemd'), { recursive: true });
    mkdirSync(join(pkg, 'scripts'));
    cpSync(join(real, 'scripts', 'build-bpf.sh'), join(pkg, 'scripts', 'build-bpf.sh'));
    cpSync(join(real, 'bpf'), join(pkg, 'bpf'), { recursive: true, filter: (src) => !src.includes(join('bpf', 'build')) });
    symlinkSync(join(real, 'node_modules'), join(pkg, 'node_modules'));
    symlinkSync(join(real, 'native'), join(pkg, 'native'));
    const cli = join(pkg, 'dist', 'src', 'cli', 'main.js');
    const before = find(doctor(cli), 'eBPF engine');
    assert.equal(before.status, 'degraded');
    assert.match(before.detail, /the BPF object is not built \(.*sentinel\.bpf\.o/);
    assert.match(before.fix ?? '', /bash .*scripts\/build-bpf\.sh$/);
    const fixed = spawnSync('sh', ['-c', before.fix ?? 'false'], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    assert.equal(fixed.status, 0, `the fix as printed failed: ${fixed.stderr}`);
    const after = find(doctor(cli), 'eBPF engine');
    assert.equal(after.status, 'ok', after.detail);
  });

  test('a unit that does not grant CAP_BPF or filters bpf() is named, with a fix', () => {
    const unit = '[Service]\nCapabilityBoundingSet=CAP_LINUX_IMMUTABLE CAP_PERFMON\nSystemCallFilter=@system-service perf_event_open\nSystemCallFilter=~@mount\n';
    const p = unitPrivileges(unit);
    assert.deepEqual(p.caps, ['CAP_LINUX_IMMUTABLE', 'CAP_PERFMON']);
    assert.equal(p.syscallsAllowed('bpf'), false);
    assert.equal(p.syscallsAllowed('perf_event_open'), true);
    const shipped = unitPrivileges(spawnSync('cat', [join(packageRoot(), 'systemd', 'omnimind-sentinel.service')], { encoding: 'utf8' }).stdout);
    assert.ok(shipped.caps?.includes('CAP_BPF') === true && shipped.caps.includes('CAP_PERFMON'), 'the shipped unit grants CAP_BPF and CAP_PERFMON');
    assert.equal(shipped.syscallsAllowed('bpf') && shipped.syscallsAllowed('perf_event_open'), true, 'the shipped unit allows bpf() and perf_event_open()');
  });
});
