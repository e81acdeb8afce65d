// A deploy over the control socket is answered once the new release is live and on stable storage, not
// after the deploy's tail (state/highest.json raised, old releases pruned, under the same vault lock):
// the real flag store, wrapped so that the tail's unseal of state/ waits at a gate the test opens, holds
// the tail while the reply, and `sentinel sign-and-deploy --socket`'s summary, arrive. A tail that fails
// is still seen: in the daemon's log, in the audit log (a `deploy-tail` record after the `deploy` record,
// which is on disk before the reply), and in `status`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { sendRequest } from '../../src/adapters/control-client.js';
import { defaultFlagStore, type FlagStore } from '../../src/adapters/flags.js';
import { SentinelError } from '../../src/core/errors.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';
import { assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { sampleTree, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupDaemonFiles());

/** The real flag store; once armed, the next unseal of `dir` waits until `open()` (or fails, with `fail`). */
function gatedUnseal(): { store: FlagStore; arm(dir: string, how: 'hold' | 'fail'): void; open(): void; free(): void; readonly held: boolean } {
  const real = defaultFlagStore();
  let armed: { dir: string; how: 'hold' | 'fail' } | null = null;
  let release: (() => void) | null = null;
  const gate = async (paths: string[], on: boolean): Promise<void> => {
    if (armed === null || on || !paths.some((p) => realpathSync(p) === armed?.dir)) return;
    const how = armed.how;
    armed = null;
    if (how === 'fail') throw new SentinelError('not-permitted', 'injected: cannot lift +i from state/', { where: paths[0] });
    await new Promise<void>((resolve) => (release = resolve));
  };
  const store: FlagStore = {
    kind: real.kind,
    getFlags: (p) => real.getFlags(p),
    setFlag: async (p, flag, on) => {
      await gate([p], on);
      await real.setFlag(p, flag, on);
    },
    ...(real.setFlagMany !== undefined ? { setFlagMany: async (ps: string[], flag: number, on: boolean) => (await gate(ps, on), real.setFlagMany!(ps, flag, on)) } : {}),
    ...(real.getFlagsMany !== undefined ? { getFlagsMany: (ps: string[]) => real.getFlagsMany!(ps) } : {}),
    ...(real.getImmutableMany !== undefined ? { getImmutableMany: (ps: string[]) => real.getImmutableMany!(ps) } : {}),
  };
  return {
    store,
    arm: (dir, how) => (armed = { dir: realpathSync(dir), how }),
    open: () => {
      const r = release;
      release = null;
      r?.();
    },
    // no more gate: whatever waits goes on, and nothing armed will wait (a failed test still stops its daemon)
    free() {
      armed = null;
      this.open();
    },
    get held() {
      return release !== null;
    },
  };
}

interface Reply<T> {
  ok: boolean;
  result?: T;
  error?: { code: string; message: string };
}
type Deployed = { version: number; releaseId: string; audited: boolean; warning?: string };

const highestVersion = (d: TestDaemon): number => (JSON.parse(readFileSync(join(d.tv.path, 'state', 'highest.json'), 'utf8')) as { version: number }).version;
const tailLine = (d: TestDaemon, releaseId: string): Promise<Record<string, unknown>> => waitFor(`the daemon's log line for the tail of ${releaseId}`, 20_000, () => d.logLines.find((l) => l.event === 'deploy-tail' && l.releaseId === releaseId));

test('a deploy over the socket, and sign-and-deploy --socket, are answered while the deploy\'s tail is still held; the tail then finishes', { timeout: 90_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr)')) return;
  const gate = gatedUnseal();
  const d = await startTestDaemon('deploy-reply', {}, {}, { flagStore: gate.store });
  try {
    const b2 = await d.bundle(2);
    gate.arm(join(d.tv.path, 'state'), 'hold');
    // sendRequest's own bound: without the reply at the live point it never comes while the gate is shut
    const reply = (await sendRequest(d.socket, { op: 'deploy', bundlePath: b2.path }, { timeoutMs: 20_000 })) as Reply<Deployed>;
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.deepEqual([reply.result?.version, reply.result?.audited, reply.result?.warning], [2, true, undefined]);
    assert.equal(highestVersion(d), 1, 'answered before the tail raised highest.json');
    // `audited: true` speaks for this deploy's own record: on disk before the reply, while the tail is held
    const onDisk = readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(onDisk.some((r) => r.kind === 'deploy' && r.releaseId === b2.releaseId), `the deploy's audit record is written before the reply: ${JSON.stringify(onDisk.map((r) => r.kind))}`);
    assert.equal(onDisk.some((r) => r.kind === 'deploy-tail'), false, 'the tail has not ended');
    await waitFor('the tail to reach the gate', 20_000, () => gate.held || null);
    gate.open();
    const done = await tailLine(d, b2.releaseId);
    assert.equal(done.ok, true, JSON.stringify(done));
    assert.equal(highestVersion(d), 2, 'the tail raised highest.json after the reply');

    const keys = writeKeyFiles(d.dir, 'release', d.tv.keys[0]!);
    writeTree(join(d.dir, 'src-3'), sampleTree('v3'));
    gate.arm(join(d.tv.path, 'state'), 'hold');
    const r = await sentinel(['sign-and-deploy', join(d.dir, 'src-3'), '--key', keys.key, '--socket', d.socket, '--json'], { timeoutMs: 20_000 });
    assertOk(r);
    assert.deepEqual((JSON.parse(r.stdout) as { version: number; via: string }), { ok: true, version: 3, releaseId: (JSON.parse(r.stdout) as { releaseId: string }).releaseId, via: 'socket' });
    assert.equal(highestVersion(d), 2, 'sign-and-deploy printed its summary and exited before the tail raised highest.json');
    await waitFor('the tail to reach the gate', 20_000, () => gate.held || null);
    gate.open();
    await tailLine(d, (JSON.parse(r.stdout) as { releaseId: string }).releaseId);
    assert.equal(highestVersion(d), 3);
  } finally {
    gate.free();
    await d.handle.stop('test');
  }
});

test('a deploy whose tail fails is answered without the tail\'s warning; the failure is in the daemon\'s log, the audit log\'s deploy record and status', { timeout: 90_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr)')) return;
  const gate = gatedUnseal();
  const d = await startTestDaemon('deploy-tail-fails', {}, {}, { flagStore: gate.store });
  const b2 = await d.bundle(2);
  try {
    gate.arm(join(d.tv.path, 'state'), 'fail');
    const reply = (await sendRequest(d.socket, { op: 'deploy', bundlePath: b2.path }, { timeoutMs: 20_000 })) as Reply<Deployed>;
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.deepEqual([reply.result?.version, reply.result?.warning], [2, undefined], 'the reply is the live result, before the tail');
    const line = await tailLine(d, b2.releaseId);
    assert.equal(line.ok, false, JSON.stringify(line));
    assert.equal(line.level, 'warn');
    assert.match(String(line.warning), /injected: cannot lift \+i from state\//);
    const st = (await sendRequest(d.socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply<{ vault: { version: number; lastDeployTail: { releaseId: string; ok: boolean; warning?: string } | null }; daemon: { statusLine: string } }>;
    assert.equal(st.result?.vault.version, 2);
    assert.equal(st.result?.vault.lastDeployTail?.releaseId, b2.releaseId);
    assert.equal(st.result?.vault.lastDeployTail?.ok, false);
    assert.match(st.result?.vault.lastDeployTail?.warning ?? '', /injected/);
    assert.match(st.result?.daemon.statusLine ?? '', /deploy's tail failed.*injected/);
  } finally {
    gate.free();
    await d.handle.stop('test');
  }
  const recs = readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const deploys = recs.filter((r) => r.kind === 'deploy');
  assert.equal(deploys.length, 1);
  assert.doesNotMatch(String(deploys[0]!.detail), /injected/, 'the deploy record is the live result, written before the reply');
  const tails = recs.filter((r) => r.kind === 'deploy-tail');
  assert.equal(tails.length, 1);
  assert.equal(tails[0]!.releaseId, b2.releaseId);
  assert.match(String(tails[0]!.detail), /injected: cannot lift \+i from state\//, 'the tail\'s failure is an audit record of its own');
  assert.ok(recs.indexOf(tails[0]!) > recs.indexOf(deploys[0]!));
});
