// What the next daemon kills from stateDir/children.json: only what is provably what an earlier daemon started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ChildRecords, CHILD_RECORDS_FILE } from '../../../src/daemon/targets/child-records.js';
import { readProcState, processTable, type ProcessEntry } from '../../../src/adapters/proc.js';
import { waitFor } from '../../helpers/wait.js';

const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();

async function recordsWith(content: unknown): Promise<{ records: ChildRecords; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-child-records-'));
  const file = join(dir, CHILD_RECORDS_FILE);
  await writeFile(file, JSON.stringify(content));
  return { records: new ChildRecords(file), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A process group (leader gone) with one sleeping member, as a shell started in this test's session leaves it. */
async function strayGroup(): Promise<{ pgid: number; member: number; startTicks: number; kill: () => void }> {
  // setpgid(0, 0): the leader starts a group of its own inside this test's session (not a session of its own)
  const py = "import os, time\nos.setpgid(0, 0)\nm = os.fork()\nif m == 0:\n    os.execvp('sleep', ['sleep', '300'])\nprint(f'g={os.getpid()} m={m}', flush=True)\ntime.sleep(300)\n";
  const sh = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  sh.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const [member, pgid] = await waitFor('the group and its member', 5_000, () => {
    const m = /m=(\d+)/.exec(out);
    const g = /g=(\d+)/.exec(out);
    return m !== null && g !== null ? [Number(m[1]), Number(g[1])] : null;
  });
  const leader = (await processTable({ cmdline: false })).get(pgid);
  assert.ok(leader !== undefined);
  process.kill(pgid, 'SIGKILL'); // the leader goes, its member stays in the group
  await waitFor('the leader gone', 5_000, async () => (!(await readProcState(pgid)).alive ? true : null));
  return { pgid, member, startTicks: leader.startTicks, kill: () => { try { process.kill(member, 'SIGKILL'); } catch { /* gone */ } sh.kill('SIGKILL'); } };
}

test('records the daemon never writes are dropped: PID 0 or 1, a negative group, pid other than its group, a bad boot id', async () => {
  for (const bad of [
    { pid: 1, pgid: 1, startTicks: 0, bootId },
    { pid: 0, pgid: 0, startTicks: 0, bootId },
    { pid: -5, pgid: -5, startTicks: 0, bootId },
    { pid: process.pid, pgid: 1, startTicks: 0, bootId },
    { pid: process.pid, pgid: process.pid, startTicks: 0, bootId: 'unknown' },
  ]) {
    const { records, cleanup } = await recordsWith({ t: bad });
    try {
      assert.deepEqual(await records.sweep('t'), [], JSON.stringify(bad));
      assert.equal((await readProcState(process.pid)).alive, true);
    } finally {
      await cleanup();
    }
  }
});

test('a group whose leader is gone is swept only when it is the recorded session; a group of another session is left alone', async () => {
  const g = await strayGroup();
  try {
    const member = (await processTable({ cmdline: false })).get(g.member);
    assert.equal(member?.pgrp, g.pgid, 'the member is in the group');
    assert.notEqual(member?.session, g.pgid, 'and in this test session, not a session the group leads');
    const { records, cleanup } = await recordsWith({ t: { pid: g.pgid, pgid: g.pgid, startTicks: g.startTicks, bootId } });
    try {
      assert.deepEqual(await records.sweep('t'), []);
      assert.equal((await readProcState(g.member)).alive, true, 'a process of another session is not killed');
    } finally {
      await cleanup();
    }
  } finally {
    g.kill();
  }
});

test('a leftover of a group that led its own session is killed (what a kill -9 of the daemon leaves)', async () => {
  // setsid: the shell leads its own session and group, as the daemon starts command targets
  const sh = spawn('setsid', ['sh', '-c', 'sleep 300 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'], detached: false });
  let out = '';
  sh.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const member = await waitFor('the member', 5_000, () => (Number(out.trim()) > 0 ? Number(out.trim()) : null));
  const table = await processTable({ cmdline: false });
  const pgid = table.get(member)!.pgrp;
  const leader = table.get(pgid)!;
  process.kill(pgid, 'SIGKILL');
  await waitFor('the leader gone', 5_000, async () => (!(await readProcState(pgid)).alive ? true : null));
  const { records, cleanup } = await recordsWith({ t: { pid: pgid, pgid, startTicks: leader.startTicks, bootId } });
  try {
    assert.deepEqual(await records.sweep('t'), [member]);
    assert.equal((await readProcState(member)).alive, false);
  } finally {
    try { process.kill(member, 'SIGKILL'); } catch { /* gone */ }
    await cleanup();
  }
});

test('a recorded process or group member whose PID another process holds by the time of the kill is not signalled', async () => {
  // Two unrelated processes; the snapshot the sweep decides on was taken while their PIDs still named the
  // recorded command (the leader) and a member of its group, both with another start time than now.
  const spawnSleeper = async (): Promise<{ child: ReturnType<typeof spawn>; pid: number; startTicks: number }> => {
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    await once(child, 'spawn');
    const s = await readProcState(child.pid!);
    assert.ok(s.alive);
    return { child, pid: child.pid!, startTicks: s.identity.startTicks };
  };
  const leader = await spawnSleeper();
  const member = await spawnSleeper();
  const ended = (c: ReturnType<typeof spawn>): Promise<NodeJS.Signals | null> =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve(c.signalCode) : once(c, 'exit').then(([, sig]) => sig as NodeJS.Signals | null);
  let taken = 0;
  const stale = async (): Promise<Map<number, ProcessEntry>> => {
    const table = await processTable({ cmdline: false });
    if (taken++ > 0) return table; // only the first snapshot is stale
    const was = { pgrp: leader.pid, session: leader.pid };
    table.set(leader.pid, { ...table.get(leader.pid)!, ...was, startTicks: leader.startTicks - 1 });
    table.set(member.pid, { ...table.get(member.pid)!, ...was, startTicks: leader.startTicks - 1 });
    return table;
  };
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-child-records-'));
  const file = join(dir, CHILD_RECORDS_FILE);
  await writeFile(file, JSON.stringify({ t: { pid: leader.pid, pgid: leader.pid, startTicks: leader.startTicks - 1, bootId } }));
  try {
    assert.deepEqual(await new ChildRecords(file, stale).sweep('t'), []);
    leader.child.kill('SIGTERM');
    member.child.kill('SIGTERM');
    assert.equal(await ended(leader.child), 'SIGTERM', 'the process now holding the leader PID was not SIGKILLed');
    assert.equal(await ended(member.child), 'SIGTERM', 'the process now holding the member PID was not SIGKILLed');
  } finally {
    leader.child.kill('SIGKILL');
    member.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

test('a member the first snapshot did not show (forked while the sweep ran) is killed by the next one', async () => {
  const sh = spawn('setsid', ['sh', '-c', 'sleep 300 & echo $!; sleep 300 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  sh.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const [first, late] = await waitFor('the members', 5_000, () => {
    const pids = out.trim().split('\n').map(Number).filter((n) => n > 0);
    return pids.length === 2 ? pids : null;
  });
  const table = await processTable({ cmdline: false });
  const pgid = table.get(first!)!.pgrp;
  const leader = table.get(pgid)!;
  process.kill(pgid, 'SIGKILL');
  await waitFor('the leader gone', 5_000, async () => (!(await readProcState(pgid)).alive ? true : null));
  let taken = 0;
  const late1 = async (): Promise<Map<number, ProcessEntry>> => {
    const t = await processTable({ cmdline: false });
    if (taken++ === 0) t.delete(late!);
    return t;
  };
  const { records, cleanup } = await recordsWith({ t: { pid: pgid, pgid, startTicks: leader.startTicks, bootId } });
  try {
    assert.deepEqual((await new ChildRecords(records.file, late1).sweep('t')).sort(), [first, late].sort());
    assert.equal((await readProcState(first!)).alive, false);
    assert.equal((await readProcState(late!)).alive, false);
  } finally {
    for (const pid of [first!, late!]) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await cleanup();
  }
});
