// scanTree on real trees: what it reports (types, modes, sizes, symlink targets, bytewise order)
// and every rejection with its path: fifo, socket, device, setuid/setgid, non-UTF-8 name, and an
// unreadable file or directory (made real by scanning as user nobody).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { rejection } from '../helpers/core-factory.js';
import { scanTree } from '../../src/adapters/tree.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const scratch = (): string => makeTempDir('tree');

after(() => removeTempDirs());

describe('scanTree', () => {
  test('describes files, dirs and symlinks, sorted bytewise by relative path', async () => {
    const root = scratch();
    for (const d of ['a', 'a/c', 'B']) mkdirSync(join(root, d));
    for (const f of ['Z', 'a b', 'a-b', 'a.b', 'é', 'a/c/deep']) writeFileSync(join(root, f), f);
    chmodSync(join(root, 'Z'), 0o750);
    chmodSync(join(root, 'B'), 0o700);
    writeFileSync(join(root, 'empty'), '');
    symlinkSync('a/c/deep', join(root, 'link'));
    const entries = await scanTree(root);
    assert.deepEqual(entries.map((e) => e.path), ['B', 'Z', 'a', 'a b', 'a-b', 'a.b', 'a/c', 'a/c/deep', 'empty', 'link', 'é']);
    const by = new Map(entries.map((e) => [e.path, e]));
    assert.deepEqual(by.get('Z'), { type: 'file', path: 'Z', mode: 0o750, size: 1, abs: join(root, 'Z') });
    assert.deepEqual(by.get('B'), { type: 'dir', path: 'B', mode: 0o700, size: 0, abs: join(root, 'B') });
    assert.equal(by.get('a/c/deep')!.size, 'a/c/deep'.length);
    assert.equal(by.get('empty')!.size, 0);
    const link = by.get('link')!;
    assert.equal(link.type, 'symlink');
    assert.equal(link.target, 'a/c/deep');
    assert.equal(by.get('é')!.abs, join(root, 'é'));
  });

  test('an empty tree has no entries; a missing root is not-found', async () => {
    assert.deepEqual(await scanTree(scratch()), []);
    const missing = join(scratch(), 'missing');
    assert.deepEqual(await rejection(scanTree(missing)), { code: 'not-found', where: missing });
  });

  test('fifo, socket and device are bad-path naming the entry', async (t) => {
    const fifoTree = scratch();
    mkdirSync(join(fifoTree, 'sub'));
    assert.equal(spawnSync('mkfifo', [join(fifoTree, 'sub', 'pipe')]).status, 0);
    assert.deepEqual(await rejection(scanTree(fifoTree)), { code: 'bad-path', where: join(fifoTree, 'sub', 'pipe') });

    const sockTree = scratch();
    const sock = join(sockTree, 'control.sock');
    const server = createServer();
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      assert.deepEqual(await rejection(scanTree(sockTree)), { code: 'bad-path', where: sock });
    } finally {
      await new Promise((res) => server.close(res));
    }

    if (needs(t, isRoot(), 'root (mknod)')) return;
    const devTree = scratch();
    assert.equal(spawnSync('mknod', [join(devTree, 'null'), 'c', '1', '3']).status, 0);
    assert.deepEqual(await rejection(scanTree(devTree)), { code: 'bad-path', where: join(devTree, 'null') });
  });

  test('setuid and setgid entries are bad-path', async () => {
    const suid = scratch();
    writeFileSync(join(suid, 'tool'), '#!/bin/sh\n');
    chmodSync(join(suid, 'tool'), 0o4755);
    assert.deepEqual(await rejection(scanTree(suid)), { code: 'bad-path', where: join(suid, 'tool') });
    const sgid = scratch();
    mkdirSync(join(sgid, 'shared'));
    chmodSync(join(sgid, 'shared'), 0o2775);
    assert.deepEqual(await rejection(scanTree(sgid)), { code: 'bad-path', where: join(sgid, 'shared') });
  });

  test('a file name that is not UTF-8 is bad-path', async () => {
    const root = scratch();
    writeFileSync(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
    assert.deepEqual(await rejection(scanTree(root)), { code: 'bad-path', where: root });
  });

  test('unreadable file or directory is io (scanned as user nobody)', (t) => {
    if (needs(t, isRoot(), 'root (to run the scan as nobody)')) return;
    if (needs(t, spawnSync('setpriv', ['--version']).error === undefined, 'setpriv (util-linux)')) return;
    const base = scratch();
    chmodSync(base, 0o755);
    const treeModule = fileURLToPath(new URL('../../src/adapters/tree.js', import.meta.url));
    const script = join(base, 'child.mjs');
    writeFileSync(script, `
      import { scanTree } from ${JSON.stringify(treeModule)};
      try { await scanTree(process.argv[2]); console.log(JSON.stringify('ok')); }
      catch (e) { console.log(JSON.stringify([e.code, e.where])); }
    `);
    chmodSync(script, 0o644);
    const fileTree = join(base, 'files');
    mkdirSync(fileTree, { mode: 0o755 });
    writeFileSync(join(fileTree, 'readable'), 'x', { mode: 0o644 });
    writeFileSync(join(fileTree, 'secret'), 'x', { mode: 0o600 });
    const dirTree = join(base, 'dirs');
    mkdirSync(join(dirTree, 'closed'), { recursive: true, mode: 0o755 });
    chmodSync(join(dirTree, 'closed'), 0o311);
    const asNobody = (root: string): unknown => {
      const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, script, root], { encoding: 'utf8' });
      assert.equal(r.status, 0, `child as nobody: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    assert.deepEqual(asNobody(fileTree), ['io', join(fileTree, 'secret')]);
    assert.deepEqual(asNobody(dirTree), ['io', join(dirTree, 'closed')]);
    chmodSync(join(fileTree, 'secret'), 0o644);
    assert.equal(asNobody(fileTree), 'ok', 'the same tree scans once readable');
  });
});
