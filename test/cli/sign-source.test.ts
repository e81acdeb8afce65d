// `sentinel sign` reads its source tree through directory fds (docs/SECURITY.md#signing-a-source-tree):
// a directory swapped for a symlink while signing cannot pull a file from outside the tree into the
// bundle, the bytes hashed are the bytes copied, and a file with more than one hard link is refused.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, liveTree, tempDir } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { CLI, assertFails, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';

after(() => cleanupAll());

const BIG = 64 * 1024 * 1024;

/** Waits until process `pid` has `file` open (a hashing or copying read has started on it). */
async function whenOpened(pid: number, file: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
        } catch {
          // the fd closed meanwhile
        }
      }
    } catch {
      return false; // the process is gone
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return false;
}

test('a source directory swapped for a symlink while signing never brings an outside file into the bundle', { timeout: 180_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('sign-swap');
  const k = writeKeyFiles(base, 'k', testKey('sign-swap'));
  const vault = join(base, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub, '--vault-id', 'swap']));
  const marker = `TOP-SECRET-${randomBytes(8).toString('hex')}`;
  const outside = join(base, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), `${marker}\n`, { mode: 0o600 });
  for (let round = 1; round <= 3; round++) {
    const src = join(base, `src-${round}`);
    mkdirSync(join(src, 'zz'), { recursive: true });
    // Big files sort before zz/: the swap happens while they are read, before zz/secret is.
    for (const n of ['aa-big-1', 'aa-big-2']) writeFileSync(join(src, n), randomBytes(BIG));
    writeFileSync(join(src, 'zz', 'secret'), 'public placeholder\n', { mode: 0o644 });
    const out = join(base, `r${round}.bundle`);
    const child = spawn(process.execPath, [CLI, 'sign', src, '--key', k.key, '--vault-id', 'swap', '--version', String(round), '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    const opened = await whenOpened(child.pid!, join(src, 'aa-big-1'), 60_000);
    assert.ok(opened, `round ${round}: sign never opened the first big file`);
    renameSync(join(src, 'zz'), join(src, 'zz.real'));
    symlinkSync(outside, join(src, 'zz'));
    const code = await exited;
    if (code !== 0) {
      assert.match(stderr, /^sentinel: [a-z-]+: /, `round ${round}: one error line`);
      continue;
    }
    assert.ok(!readFileSync(out).includes(marker), `round ${round}: the bundle holds the outside file`);
    assertOk(await sentinel(['deploy', out, '--vault', vault]));
    assert.equal(readFileSync(join(liveTree(vault), 'zz', 'secret'), 'utf8'), 'public placeholder\n');
  }
});

test('a source file with more than one hard link is refused (bad-path), naming it', async (t) => {
  if (needs(t, isRoot(), 'root')) return;
  const base = tempDir('sign-links');
  const k = writeKeyFiles(base, 'k', testKey('sign-links'));
  const src = join(base, 'src');
  mkdirSync(join(src, 'lib'), { recursive: true });
  writeFileSync(join(src, 'lib', 'phi.py'), 'print(1)\n');
  linkSync(join(src, 'lib', 'phi.py'), join(base, 'elsewhere.py'));
  const r = await sentinel(['sign', src, '--key', k.key, '--vault-id', 'links', '--version', '1', '--out', join(base, 'b.bundle')]);
  assertFails(r, 'bad-path');
  assert.ok(r.errLines[0]!.endsWith(`(${join(src, 'lib', 'phi.py')})`), r.errLines[0]);
});
