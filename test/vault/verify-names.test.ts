// Names that are not UTF-8 in the live tree, through the native pass and the lstat walk: the pass reads every entry by its raw name, so
// a raw name must never decode to another entry's path (a lossy decoding turns `x\xff` into the
// signed `x\uFFFD`, and the decoy's record would then be the one compared), and a symlink whose
// target is not UTF-8 must not match a signed target that decodes alike.
import assert from 'node:assert/strict';
import { chmodSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, liveTree, makeVault, run } from '../helpers/vault-factory.js';
import type { TreeSpec } from '../helpers/vault-factory.js';
import { walkTreeInspector } from '../../src/adapters/tree-inspector-walk.js';
import { openVault } from '../../src/vault/index.js';
import type { VerifyReport } from '../../src/vault/types.js';

after(cleanupAll);

const raw = (dir: string, name: string, byte: number): Buffer => Buffer.concat([Buffer.from(`${dir}/${name}`), Buffer.from([byte])]);

type Found = { ok: boolean; problems: string[] };

/** Verify after the tamper, through the native pass and through the lstat walk (the way without the addon). */
async function tamperedVerify(label: string, tree: TreeSpec, tamper: (live: string) => void): Promise<{ native: Found; walk: Found }> {
  const tv = await makeVault(label);
  try {
    await tv.vault.deploy((await tv.bundle(1, tree)).path);
    assert.equal((await tv.vault.verify({ scope: 'live' })).ok, true, 'intact before the tamper');
    const live = liveTree(tv.path);
    // Every file and directory, whatever its name's bytes (chattr -R stops at a symlink).
    const chattr = (flag: string) => run('sh', ['-c', 'find "$1" ! -type l -exec chattr "$2" {} +', 'sh', live, flag]);
    chattr('-i');
    tamper(live);
    chattr('+i');
    const found = (r: VerifyReport): Found => ({ ok: r.ok, problems: r.problems.map((p) => `${p.code}@${p.path.replace(/^.*\/tree\//, '')}: ${p.message}`) });
    const walked = await openVault(tv.path, { ...tv.deps, inspector: walkTreeInspector(tv.deps.flags, tv.deps.hash) });
    return { native: found(await tv.vault.verify({ scope: 'live' })), walk: found(await walked.verify({ scope: 'live' })) };
  } finally {
    await closeDeps(tv.deps);
  }
}

describe('vault verify and names that are not UTF-8', () => {
  test('a rewritten x\\uFFFD behind a decoy x\\xff with the signed content: the rewrite and the decoy are reported', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { native: r, walk: w } = await tamperedVerify('names-decoy', [
      { type: 'file', path: 'x\uFFFD', content: 'good content\n' },
      { type: 'file', path: 'y', content: 'y\n' },
    ], (live) => {
      writeFileSync(join(live, 'x\uFFFD'), 'EVIL content\n');
      const decoy = raw(live, 'x', 0xff);
      writeFileSync(decoy, 'good content\n');
      chmodSync(decoy, 0o644);
    });
    assert.equal(r.ok, false, `verify compared the decoy instead of the rewritten file: ${JSON.stringify(r.problems)}`);
    assert.ok(r.problems.some((p) => p.startsWith('hash-mismatch@x\uFFFD:')), JSON.stringify(r.problems));
    assert.ok(r.problems.some((p) => p.startsWith('tampered@x\udcff: extra file')), JSON.stringify(r.problems));
    assert.equal(w.ok, false, `the walk: ${JSON.stringify(w.problems)}`);
    assert.ok(w.problems.some((p) => p.startsWith('hash-mismatch@x\uFFFD:')), JSON.stringify(w.problems));
    assert.ok(w.problems.some((p) => p.startsWith('tampered@x\udcff: extra')), JSON.stringify(w.problems));
  });

  test('a symlink repointed from x\\uFFFD to x\\x80, a new file: the link and the file are reported', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const { native: r, walk: w } = await tamperedVerify('names-link', [
      { type: 'file', path: 'x\uFFFD', content: 'good content\n' },
      { type: 'symlink', path: 'l', target: 'x\uFFFD' },
    ], (live) => {
      writeFileSync(raw(live, 'x', 0x80), 'EVIL content\n');
      unlinkSync(join(live, 'l'));
      symlinkSync(Buffer.from([0x78, 0x80]), join(live, 'l'));
    });
    assert.equal(r.ok, false, `verify took the repointed link for the signed one: ${JSON.stringify(r.problems)}`);
    assert.ok(r.problems.some((p) => p.includes('@l: ') && p.includes('EILSEQ')), JSON.stringify(r.problems));
    assert.ok(r.problems.some((p) => p.startsWith('tampered@x\udc80: extra file')), JSON.stringify(r.problems));
    assert.equal(w.ok, false, `the walk took the repointed link for the signed one: ${JSON.stringify(w.problems)}`);
    assert.ok(w.problems.some((p) => p.includes('@l: ') && p.includes('EILSEQ')), JSON.stringify(w.problems));
    assert.ok(w.problems.some((p) => p.startsWith('tampered@x\udc80: extra')), JSON.stringify(w.problems));
  });
});
