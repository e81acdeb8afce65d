// A tamper the heal cannot repair (a stray file in state/: the heal restores the live release, not
// the vault's own directories) is recorded once, healed once, and then not again every verify
// period; the vault stays reported as not intact; a new problem is still recorded and healed at once.
import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs, isRoot } from '../helpers/env.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor, type TestDaemon } from '../helpers/daemon-harness.js';
import { run } from '../helpers/vault-factory.js';

after(() => cleanupDaemonFiles());

const chattr = (...args: string[]): void => void run('chattr', args);

interface Rec {
  kind: string;
  problems?: { code: string; path: string }[];
}

const records = (d: TestDaemon): Rec[] => readFileSync(d.auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
const tampersNaming = (d: TestDaemon, path: string): Rec[] => records(d).filter((r) => r.kind === 'tamper' && (r.problems ?? []).some((p) => p.path === path));
const verifies = (d: TestDaemon): number => d.logLines.filter((l) => l.event === 'verify').length;

async function periods(d: TestDaemon, n: number): Promise<void> {
  const start = verifies(d);
  await waitFor(`${String(n)} more verify periods`, 30_000, () => (verifies(d) >= start + n ? true : null));
}

interface Status {
  vault: { lastVerify: { ok: boolean } | null };
}

test('a tamper the heal cannot repair is recorded and healed once, not every period; the vault stays not intact; a new problem is recorded and healed at once', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon('tamper-persist', { limits: { verifyIntervalMs: 1_000, flagAuditIntervalMs: 3_600_000 } });
  try {
    const state = join(d.tv.path, 'state');
    chattr('-i', state);
    writeFileSync(join(state, 'stray'), 'left by someone\n');
    chattr('+i', state);
    await waitFor('a tamper record naming state/stray', 30_000, () => (tampersNaming(d, 'state/stray').length > 0 ? true : null));
    await periods(d, 4);
    assert.equal(tampersNaming(d, 'state/stray').length, 1, 'one tamper record for a problem that persists');
    assert.ok(records(d).filter((r) => r.kind === 'heal').length <= 1, 'at most one heal for it');
    const s = (await d.handle.status()) as Status;
    assert.equal(s.vault.lastVerify?.ok, false, 'the vault is still reported as not intact');

    // A new problem on top: recorded and healed at once.
    const live = join(d.tv.path, 'current', 'tree');
    const file = readdirSync(live, { withFileTypes: true }).find((e) => e.isFile())?.name;
    assert.ok(file !== undefined, 'a file in the live tree');
    const heals = records(d).filter((r) => r.kind === 'heal').length;
    chattr('-i', join(live, file));
    appendFileSync(join(live, file), 'changed\n');
    await waitFor('a tamper record naming the changed file', 30_000, () => (records(d).some((r) => r.kind === 'tamper' && (r.problems ?? []).some((p) => p.path.endsWith(`/tree/${file}`))) ? true : null));
    await waitFor('the heal of the changed file', 30_000, () => (records(d).filter((r) => r.kind === 'heal').length > heals ? true : null));
    const after = records(d).filter((r) => r.kind === 'tamper').length;
    await periods(d, 4);
    assert.equal(records(d).filter((r) => r.kind === 'tamper').length, after, 'no further tamper records while only the stray file remains');
  } finally {
    await d.handle.stop('test');
  }
});

/** Starts a daemon whose stored bundles are moved aside (so no heal can run); returns a live file's path and a count of tamper records naming it. */
async function withoutHeal(t: TestContext, label: string, body: (d: TestDaemon, target: string, naming: () => number) => Promise<void>): Promise<void> {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const d = await startTestDaemon(label, { limits: { verifyIntervalMs: 1_000, flagAuditIntervalMs: 3_600_000 } });
  const aside = join(d.dir, 'bundles-aside');
  try {
    const bundles = join(d.tv.path, 'bundles');
    chattr('-i', bundles);
    for (const name of readdirSync(bundles)) {
      chattr('-i', join(bundles, name));
      mkdirSync(aside, { recursive: true });
      renameSync(join(bundles, name), join(aside, name));
    }
    chattr('+i', bundles);
    const live = join(d.tv.path, 'current', 'tree');
    const file = readdirSync(live, { withFileTypes: true }).find((e) => e.isFile() && e.name !== 'empty')?.name;
    assert.ok(file !== undefined, 'a file in the live tree');
    const naming = (): number => records(d).filter((r) => r.kind === 'tamper' && (r.problems ?? []).some((p) => p.path.endsWith(`/tree/${file}`))).length;
    await body(d, join(live, file), naming);
  } finally {
    await d.handle.stop('test');
  }
}

test('while the heal cannot run (the stored bundle gone), a file changed again is recorded again, and the failing heal is retried less and less often', { timeout: 120_000 }, (t) =>
  withoutHeal(t, 'tamper-again', async (d, target, naming) => {
    const size = readFileSync(target).length;
    chattr('-i', target);
    writeFileSync(target, Buffer.alloc(size, 0x58));
    await waitFor('the first change recorded', 30_000, () => (naming() === 1 ? true : null));
    const rejectsBefore = records(d).filter((r) => r.kind === 'reject').length;
    await periods(d, 6);
    const retries = records(d).filter((r) => r.kind === 'reject').length - rejectsBefore;
    assert.ok(retries <= 3, `the failing heal was retried ${String(retries)} times in 6 periods`);
    // The same file changed again, other bytes of the same size: the same code at the same path, but a new change.
    writeFileSync(target, Buffer.alloc(size, 0x59));
    await waitFor('the second change recorded', 30_000, () => (naming() === 2 ? true : null));
  }),
);

test('while the heal cannot run, a file changed again to other bytes of the same wrong size (the report reads the same) is recorded again', { timeout: 120_000 }, (t) =>
  withoutHeal(t, 'tamper-again-size', async (d, target, naming) => {
    const size = readFileSync(target).length + 1;
    chattr('-i', target);
    writeFileSync(target, Buffer.alloc(size, 0x58));
    await waitFor('the first change recorded', 30_000, () => (naming() === 1 ? true : null));
    await periods(d, 2);
    writeFileSync(target, Buffer.alloc(size, 0x59));
    await waitFor('the second change, with the same report, recorded', 30_000, () => (naming() === 2 ? true : null));
    await periods(d, 3);
    assert.equal(naming(), 2, 'recorded once per change, not every period');
  }),
);

test('a live file changed again just after a heal (before the check that follows it) is recorded and healed again', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  let vault = '';
  const liveFile = (): string => {
    const live = join(vault, 'current', 'tree');
    const name = readdirSync(live, { withFileTypes: true }).filter((e) => e.isFile() && e.name !== 'empty').map((e) => e.name).sort()[0];
    assert.ok(name !== undefined, 'a file in the live tree');
    return join(live, name);
  };
  let raced = false;
  // The attacker acts when the heal's line is written: the new live release is in place, its check not yet run.
  const onLine = (line: Record<string, unknown>): void => {
    if (line.event !== 'heal' || raced) return;
    raced = true;
    const f = liveFile();
    chattr('-i', f);
    appendFileSync(f, 'changed again\n');
  };
  const d = await startTestDaemon('tamper-heal-race', { limits: { verifyIntervalMs: 1_000, flagAuditIntervalMs: 3_600_000 } }, {}, { onLine });
  vault = d.tv.path;
  try {
    const heals = (): number => records(d).filter((r) => r.kind === 'heal').length;
    const f = liveFile();
    chattr('-i', f);
    appendFileSync(f, 'changed\n');
    await waitFor('the first heal, and the file changed again right after it', 30_000, () => (raced ? true : null));
    await waitFor('a second heal of the file changed again', 30_000, () => (heals() >= 2 ? true : null));
    await waitFor('the vault verifies again', 30_000, async () => (((await d.handle.status()) as Status).vault.lastVerify?.ok === true ? true : null));
    assert.equal(records(d).filter((r) => r.kind === 'tamper').length, 2, 'both changes recorded');
  } finally {
    await d.handle.stop('test');
  }
});
