// The inbox's own directories: done/ and rejected/ are opened once, checked and then used through their
// descriptors, so whoever can write the inbox cannot point them elsewhere with a symlink (planted before
// the start or swapped in later) and have root move files or write reasons into another directory; a
// symlink dropped as `name.bundle` is rejected, never followed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inbox } from '../../src/daemon/inbox.js';
import type { Sentinel } from '../../src/daemon/sentinel.js';
import { SentinelError, isSentinelError } from '../../src/core/errors.js';
import { createLogger } from '../../src/adapters/logger.js';
import { startDaemon } from '../../src/daemon/main.js';
import { sendRequest } from '../../src/adapters/control-client.js';
import { needs, isRoot } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { cleanupDaemonFiles, prepareDaemonFiles, waitFor } from '../helpers/daemon-harness.js';

after(() => {
  removeTempDirs();
  cleanupDaemonFiles();
});

const log = createLogger('silent');
const refusing = { deploy: () => Promise.reject(new SentinelError('bad-signature', 'not signed by a trusted key')) } as unknown as Sentinel;
const deploying = { deploy: () => Promise.resolve({ version: 2, releaseId: 'r2' }) } as unknown as Sentinel;

function layout(label: string): { inbox: string; elsewhere: string } {
  const base = makeTempDir(label);
  const inbox = join(base, 'inbox');
  const elsewhere = join(base, 'elsewhere');
  mkdirSync(inbox);
  mkdirSync(elsewhere);
  return { inbox, elsewhere };
}

function drop(inbox: string, name: string, content = 'APT::Update::Pre-Invoke {"id";};\n'): void {
  writeFileSync(join(inbox, `.${name}.tmp`), content);
  renameSync(join(inbox, `.${name}.tmp`), join(inbox, name));
}

async function refusedAtStart(inbox: string, sentinel: Sentinel, dir: string, problem: RegExp): Promise<void> {
  const box = new Inbox(inbox, sentinel, log, { stableMs: 0, retryMs: 50 });
  try {
    await assert.rejects(box.start(), (e: unknown) => {
      assert.ok(isSentinelError(e), String(e));
      assert.equal(e.code, 'insecure-path');
      assert.equal(e.where, join(inbox, dir));
      assert.match(e.message, problem);
      return true;
    });
  } finally {
    await box.close();
  }
}

for (const dir of ['rejected', 'done'] as const) {
  test(`inbox: ${dir}/ planted as a symlink before the start is refused at start, naming it; nothing is written through it`, async (t) => {
    if (needs(t, isRoot(), 'root (the daemon moves files as root)')) return;
    const { inbox, elsewhere } = layout(`inbox-${dir}-link`);
    symlinkSync(elsewhere, join(inbox, dir));
    await refusedAtStart(inbox, dir === 'rejected' ? refusing : deploying, dir, /symlink/);
    assert.deepEqual(readdirSync(elsewhere), []);
  });

  test(`inbox: ${dir}/ renamed away and replaced by a symlink after the start: the file still goes into the directory the daemon holds`, async (t) => {
    if (needs(t, isRoot(), 'root (the daemon moves files as root)')) return;
    const { inbox, elsewhere } = layout(`inbox-${dir}-swap`);
    const box = new Inbox(inbox, dir === 'rejected' ? refusing : deploying, log, { stableMs: 0, retryMs: 50 });
    await box.start();
    try {
      renameSync(join(inbox, dir), join(inbox, 'moved-away'));
      symlinkSync(elsewhere, join(inbox, dir));
      drop(inbox, 'x.bundle');
      await waitFor('x.bundle taken out of the inbox', 15_000, () => (existsSync(join(inbox, 'x.bundle')) ? null : true));
      assert.deepEqual(readdirSync(elsewhere), [], 'nothing reached the symlink target');
      assert.deepEqual(readdirSync(join(inbox, 'moved-away')).sort(), dir === 'rejected' ? ['x.bundle', 'x.bundle.reason'] : ['x.bundle']);
      if (dir === 'rejected') assert.equal((JSON.parse(readFileSync(join(inbox, 'moved-away', 'x.bundle.reason'), 'utf8')) as { code: string }).code, 'bad-signature');
    } finally {
      await box.close();
    }
  });
}

test('inbox: done/ or rejected/ owned by another user, group- or other-writable, or not a directory is refused at start', async (t) => {
  if (needs(t, isRoot(), 'root (chown)')) return;
  const a = layout('inbox-owner');
  mkdirSync(join(a.inbox, 'done'), { mode: 0o700 });
  chownSync(join(a.inbox, 'done'), 65534, 65534);
  await refusedAtStart(a.inbox, deploying, 'done', /owned by uid 65534/);
  const b = layout('inbox-mode');
  mkdirSync(join(b.inbox, 'rejected'));
  chmodSync(join(b.inbox, 'rejected'), 0o773);
  await refusedAtStart(b.inbox, refusing, 'rejected', /writable by group or others/);
  const c = layout('inbox-file');
  writeFileSync(join(c.inbox, 'rejected'), '');
  await refusedAtStart(c.inbox, refusing, 'rejected', /not a directory/);
});

test('daemon: an inbox whose rejected/ is a symlink stops the start with insecure-path naming it', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('inbox-refused');
  const inbox = join(files.dir, 'inbox');
  const elsewhere = join(files.dir, 'elsewhere');
  mkdirSync(inbox);
  mkdirSync(elsewhere);
  symlinkSync(elsewhere, join(inbox, 'rejected'));
  writeFileSync(files.configPath, JSON.stringify({ ...files.config, vault: { ...(files.config.vault as object), inbox } }));
  await assert.rejects(startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') }), (e: unknown) => isSentinelError(e) && e.code === 'insecure-path' && e.where === join(inbox, 'rejected'));
  assert.deepEqual(readdirSync(elsewhere), []);
});

test('inbox: a symlink planted as the inbox itself is refused at start', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const { inbox, elsewhere } = layout('inbox-self-link');
  const link = `${inbox}-link`;
  symlinkSync(elsewhere, link);
  const box = new Inbox(link, refusing, log, { stableMs: 0, retryMs: 50 });
  try {
    await assert.rejects(box.start(), (e: unknown) => isSentinelError(e) && e.code === 'insecure-path' && e.where === link && /symlink/.test(e.message));
  } finally {
    await box.close();
  }
  assert.deepEqual(readdirSync(elsewhere), []);
});

test('inbox: a symlink dropped as name.bundle is rejected (bad-path) and moved as a link; the file it names is neither deployed nor touched', { timeout: 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const files = await prepareDaemonFiles('inbox-link-bundle');
  const inbox = join(files.dir, 'inbox');
  writeFileSync(files.configPath, JSON.stringify({ ...files.config, vault: { ...(files.config.vault as object), inbox }, limits: { inboxStableMs: 0 } }));
  const b2 = await files.bundle(2);
  const outside = join(files.dir, 'outside.bundle');
  copyFileSync(b2.path, outside);
  const before = readFileSync(outside);
  const handle = await startDaemon({ configFile: files.configPath, signals: false, logger: createLogger('silent') });
  try {
    symlinkSync(outside, join(inbox, '.x.tmp'));
    renameSync(join(inbox, '.x.tmp'), join(inbox, 'x.bundle'));
    const where = await waitFor('x.bundle deployed or rejected', 15_000, () => (existsSync(join(inbox, 'done', 'x.bundle')) ? 'done' : existsSync(join(inbox, 'rejected', 'x.bundle.reason')) ? 'rejected' : null));
    assert.equal(where, 'rejected', 'the link was followed and its target deployed');
    const reason = JSON.parse(readFileSync(join(inbox, 'rejected', 'x.bundle.reason'), 'utf8')) as { code: string; message: string };
    assert.equal(reason.code, 'bad-path');
    assert.match(reason.message, /symlink/);
    assert.ok(lstatSync(join(inbox, 'rejected', 'x.bundle')).isSymbolicLink(), 'the link itself was moved');
    assert.deepEqual(readFileSync(outside), before);
    const s = (await sendRequest(files.socket, { op: 'status' }, { timeoutMs: 10_000 })) as { result: { vault: { version: number } } };
    assert.equal(s.result.vault.version, 1);
  } finally {
    await handle.stop('test');
  }
});
