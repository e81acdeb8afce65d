// Release modes come from the signed manifest, never from the process umask: a deploy and a heal by
// a CLI or a daemon running under umask 077 (what the shipped unit's UMask=0077 gives) leave the live
// tree readable by an unprivileged service user (the backend unit's DynamicUser), proven by reading
// every file as uid 65534.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, lstatSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { after, test } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, liveTree, tempDir, writeTree, type TreeSpec } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { CLI, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { waitFor } from '../helpers/wait.js';

after(() => cleanupAll());

const UMASK_077 = ['sh', '-c', 'umask 077; exec "$@"', 'sh'];
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

/** A release whose files are 0644 and dirs 0755 (signed modes), plus one 0600 file that must stay private. */
const TREE: TreeSpec = [
  { type: 'dir', path: 'engine' },
  { type: 'file', path: 'engine/phi.py', content: 'def phi(x):\n    return x\n' },
  { type: 'file', path: 'engine/weights.bin', content: Buffer.alloc(300_000, 7) },
  { type: 'dir', path: 'engine/data' },
  { type: 'file', path: 'engine/data/config.json', content: '{"phi": 1}\n' },
  { type: 'file', path: 'VERSION', content: '1\n' },
  { type: 'file', path: 'private.key', content: 'not for the backend\n', mode: 0o600 },
];
const PRIVATE = 'private.key';

/** Every directory from `/` to each file of the live tree is searchable, and each file readable, by uid 65534. */
function assertReadableByNobody(vault: string): number {
  const tree = realpathSync(liveTree(vault));
  const files: string[] = [];
  (function walk(dir: string) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) files.push(p);
    }
  })(tree);
  assert.ok(files.length > 0, 'the live tree has files');
  const secret = files.find((f) => f.endsWith(`${sep}${PRIVATE}`));
  assert.ok(secret !== undefined);
  assert.equal(lstatSync(secret).mode & 0o7777, 0o600, 'a 0600 file of the manifest stays 0600');
  assert.notEqual(spawnSync(NOBODY[0]!, [...NOBODY.slice(1), 'cat', secret]).status, 0, 'and unreadable by others');
  for (const f of files.filter((x) => x !== secret)) {
    const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), 'cat', f], { encoding: 'utf8' });
    assert.equal(r.status, 0, `uid 65534 cannot read ${relative(vault, f)}: ${r.stderr.trim()}; modes on the way: ${modesOnTheWay(f)}`);
    assert.equal(r.stdout, readFileSync(f, 'utf8'));
  }
  return files.length;
}

function modesOnTheWay(path: string): string {
  const parts = path.split(sep).filter((p) => p !== '');
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')} ${(lstatSync(`/${parts.slice(0, i + 1).join('/')}`).mode & 0o7777).toString(8)}`).join(', ');
}

/** A world-searchable work directory (mkdtemp makes 0700, which would hide everything below it). */
function workDir(label: string): string {
  const d = tempDir(label);
  chmodSync(d, 0o755);
  return d;
}

async function releaseKit(base: string): Promise<{ vault: string; key: string; pub: string; src: string }> {
  const { key, pub } = writeKeyFiles(base, 'release', testKey('umask'));
  const src = join(base, 'src');
  writeTree(src, TREE);
  const vault = join(base, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', pub], { prefix: UMASK_077 }));
  return { vault, key, pub, src };
}

test('a CLI deploy under umask 077 leaves the live tree readable by an unprivileged user', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i, setpriv)')) return;
  const base = workDir('umask-cli');
  const kit = await releaseKit(base);
  const bundle = join(base, 'v1.bundle');
  assertOk(await sentinel(['sign', kit.src, '--key', kit.key, '--vault', kit.vault, '--version', '1', '--out', bundle], { prefix: UMASK_077 }));
  assertOk(await sentinel(['deploy', bundle, '--vault', kit.vault], { prefix: UMASK_077 }));
  const n = assertReadableByNobody(kit.vault);
  assertOk(await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub]));
  t.diagnostic(`${n} files readable by uid 65534`);
});

test('a daemon under umask 077 deploys and heals releases readable by an unprivileged user', { timeout: 120_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i, setpriv)')) return;
  const base = workDir('umask-daemon');
  const kit = await releaseKit(base);
  const socket = join(base, 'sentinel.sock');
  const config = join(base, 'sentinel.json');
  writeFileSync(config, JSON.stringify({ vault: { path: kit.vault, trust: [kit.pub], flagTracer: 'off' }, control: { socket }, audit: { path: join(base, 'audit.log') }, stateDir: join(base, 'state'), log: { level: 'warn' } }));
  const daemon: ChildProcess = spawn(UMASK_077[0]!, [...UMASK_077.slice(1), process.execPath, CLI, 'daemon', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitFor('daemon answering on its socket', 30_000, async () => ((await sentinel(['status', '--socket', socket])).code === 0 ? true : null), 100);
    assertOk(await sentinel(['sign-and-deploy', kit.src, '--key', kit.key, '--socket', socket, '--version', '1']));
    assertReadableByNobody(kit.vault);
    // A tampered file is healed by re-staging the release, also under the daemon's umask.
    const victim = join(liveTree(kit.vault), 'VERSION');
    const before = realpathSync(liveTree(kit.vault));
    spawnSync('chattr', ['-i', victim]);
    writeFileSync(victim, 'tampered\n');
    await waitFor('the heal swapping in a re-staged release', 30_000, () => (realpathSync(liveTree(kit.vault)) !== before ? true : null));
    await waitFor('the healed vault verifying', 30_000, async () => ((await sentinel(['vault', 'verify', kit.vault, '--trust', kit.pub])).code === 0 ? true : null), 200);
    assertReadableByNobody(kit.vault);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('chattr', ['-R', '-f', '-a', base]);
  }
});
