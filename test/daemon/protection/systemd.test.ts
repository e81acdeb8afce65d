// ProtectionManager under a real systemd (systemd-nspawn): it adopts or starts the slice unit
// instead of fighting it, reports units outside the slice with the Slice= fix, and reports the
// memory and -1000 items as this host allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProtectionItem, ProtectionStatus, ProtectionSupport } from '../../../src/daemon/protection/index.js';
import { bootContainer, needsNspawn } from '../../helpers/nspawn.js';

const projectRoot = join(fileURLToPath(import.meta.url), '..', '..', '..', '..', '..');
const BOOT_TIMEOUT_MS = 90_000;

const UNITS: Record<string, string> = {
  'omni-in.service': '[Service]\nSlice=omnimind.slice\nExecStart=/bin/sleep 300\n',
  'omni-out.service': '[Service]\nExecStart=/bin/sleep 300\n',
  'protection-probe.service':
    `[Unit]\nAfter=omni-in.service omni-out.service\n[Service]\nType=exec\nExecStart=${process.execPath} /etc/protection-probe/probe.mjs\nExecStopPost=/bin/systemctl --no-block poweroff\n`,
};

// Runs inside the container: three managers (slice adopted, a unit outside, a slice nobody started).
const PROBE = `import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const out = { errors: [] };
const show = (unit, props) => execFileSync('systemctl', ['show', '-p', props, unit], { encoding: 'utf8' });
try {
  const { ProtectionManager, protectionSchema, probeProtectionSupport } = await import('/opt/sentinel/dist/src/daemon/protection/index.js');
  const mainPid = (u) => Number(execFileSync('systemctl', ['show', '-P', 'MainPID', u], { encoding: 'utf8' }).trim());
  const inPid = mainPid('omni-in.service');
  const outPid = mainPid('omni-out.service');
  out.pids = { in: inPid, out: outPid };
  const log = { info() {}, warn() {}, error() {} };
  const run = async (spec, pids) => {
    const m = new ProtectionManager(protectionSchema.parse(spec), { pids: () => pids, log });
    await m.start();
    const r = { status: m.status(), line: m.statusLine() };
    await m.stop();
    return r;
  };
  out.adopted = await run({ memoryLow: '64M', memoryMin: '16M' }, [inPid]);
  out.adoptedShow = show('omnimind.slice', 'ActiveState,MemoryLow,MemoryMin');
  out.outside = await run({}, [inPid, outPid]);
  out.started = await run({ slice: 'omnimind-extra.slice' }, []);
  out.startedShow = show('omnimind-extra.slice', 'ActiveState,ControlGroup');
  out.support = await probeProtectionSupport();
} catch (e) { out.errors.push(String((e && e.stack) || e)); }
writeFileSync('/out/result.json', JSON.stringify(out));
`;

interface Run {
  status: ProtectionStatus;
  line: string;
}
interface ProbeResult {
  errors: string[];
  pids: { in: number; out: number };
  adopted: Run;
  adoptedShow: string;
  outside: Run;
  started: Run;
  startedShow: string;
  support: ProtectionSupport;
}

function assertState(item: ProtectionItem, state: ProtectionItem['state'], what: string): void {
  assert.equal(item.state, state, `${what}: ${item.state} (${item.reason ?? ''})`);
}

test('under a real systemd: slice unit adopted or started, units outside reported with the Slice= fix', { timeout: BOOT_TIMEOUT_MS + 30_000 }, async (t) => {
  if (needsNspawn(t)) return;
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-protection-nspawn-'));
  try {
    await mkdir(join(dir, 'probe'));
    await mkdir(join(dir, 'out'));
    await writeFile(join(dir, 'probe', 'probe.mjs'), PROBE);
    const binds: string[] = [];
    for (const [name, text] of Object.entries(UNITS)) {
      await writeFile(join(dir, name), text);
      binds.push(`--bind-ro=${join(dir, name)}:/etc/systemd/system/${name}`);
    }
    const boot = await bootContainer({
      timeoutMs: BOOT_TIMEOUT_MS,
      args: [`--bind-ro=${projectRoot}:/opt/sentinel`, `--bind-ro=${join(dir, 'probe')}:/etc/protection-probe`, `--bind=${join(dir, 'out')}:/out`, ...binds],
      wants: Object.keys(UNITS),
    });
    const consoleTail = boot.console.slice(-3000);
    assert.equal(boot.timedOut, false, `container did not power off within ${BOOT_TIMEOUT_MS} ms:\n${consoleTail}`);
    let r: ProbeResult;
    try {
      r = JSON.parse(await readFile(join(dir, 'out', 'result.json'), 'utf8')) as ProbeResult;
    } catch (e) {
      assert.fail(`no result from the probe unit (${String(e)}):\n${consoleTail}`);
    }
    assert.deepEqual(r.errors, []);
    assert.equal(r.support.systemd, true, 'PID 1 in the container is systemd');

    // Adopted: the unit with Slice=omnimind.slice is in the slice systemd made; nothing was moved.
    const a = r.adopted.status;
    assert.equal(a.systemd, true);
    assertState(a.items.slice, 'applied', 'slice');
    assert.match(a.items.slice.reason ?? '', /adopted \(systemd unit\)/);
    assert.deepEqual(a.processes.map((p) => [p.pid, p.cgroup, p.inSlice]), [[r.pids.in, '/omnimind.slice/omni-in.service', true]]);
    if (r.support.v2MemoryController) {
      assert.ok(['applied', 'ineffective'].includes(a.items.memoryLow.state), `memory.low ${a.items.memoryLow.state}`);
      assert.match(r.adoptedShow, /^MemoryLow=67108864$/m, 'set through systemctl set-property');
    } else {
      // Allowed skip of the applied branch: this container has no v2 memory controller (hybrid host).
      assertState(a.items.memoryLow, 'unsupported', 'memory.low');
      assert.match(r.adoptedShow, /^MemoryLow=0$/m, 'nothing was set behind systemd\'s back');
    }
    if (r.support.capSysResource) assertState(a.items.oom, 'applied', 'oom');
    else {
      assertState(a.items.oom, 'refused', 'oom');
      assert.equal(a.items.oom.code, 'not-permitted');
    }

    // A unit outside the slice is not moved (that would fight systemd): refused, naming the fix.
    const o = r.outside.status;
    assertState(o.items.slice, 'refused', 'slice with a unit outside');
    assert.equal(o.items.slice.code, 'not-permitted');
    assert.match(o.items.slice.reason ?? '', new RegExp(`set Slice=omnimind\\.slice .*${r.pids.out} in /system\\.slice/omni-out\\.service`));
    assert.deepEqual(o.processes.find((p) => p.pid === r.pids.out)?.inSlice, false);
    assert.match(r.outside.line, /^protection: slice refused \(targets outside it, set Slice=\)/);

    // A slice nobody started is started as a unit (systemd creates its cgroup).
    assertState(r.started.status.items.slice, 'applied', 'started slice');
    assert.match(r.started.status.items.slice.reason ?? '', /omnimind-extra\.slice started \(systemd unit\)/);
    assert.equal(r.started.status.sliceDir, '/sys/fs/cgroup/unified/omnimind.slice/omnimind-extra.slice');
    assert.match(r.startedShow, /^ActiveState=active$/m);
    assert.match(r.startedShow, /^ControlGroup=\/omnimind\.slice\/omnimind-extra\.slice$/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
