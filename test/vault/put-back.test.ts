// A consumed bundle moved back where it came from when its deploy is refused (putBack, docs/VAULT.md#deploy):
// its own mode is set on the file itself before the move, never through the path it is moved to,
// so a symlink put at that path names nothing that is changed.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { putBack } from '../../src/vault/stage.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, run, tempDir } from '../helpers/vault-factory.js';

after(cleanupAll);

describe('putBack', () => {
  test('the file gets its own mode back at its old path', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('put-back');
    const from = join(dir, 'kept.bundle');
    writeFileSync(from, 'bundle');
    chmodSync(from, 0o444);
    const to = join(dir, 'inbox.bundle');
    await putBack(from, to, 0o640);
    assert.equal(readFileSync(to, 'utf8'), 'bundle');
    assert.equal(lstatSync(to).mode & 0o7777, 0o640);
  });

  test('setuid, setgid and sticky bits of the bundle are not given back (root never sets them on a file others wrote)', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('put-back-suid');
    const from = join(dir, 'kept.bundle');
    writeFileSync(from, 'bundle');
    chmodSync(from, 0o444);
    chownSync(from, 65534, 65534);
    const to = join(dir, 'inbox.bundle');
    await putBack(from, to, 0o7755);
    assert.equal(lstatSync(to).mode & 0o7777, 0o755);
    assert.equal(lstatSync(to).uid, 65534, 'the same file, still its writer\'s');
  });

  test('a symlink at the old path that cannot be replaced: what it names is not changed', async (t) => {
    if (needs(t, isRoot(), 'root')) return;
    const dir = tempDir('put-back-link');
    const from = join(dir, 'kept.bundle');
    writeFileSync(from, 'bundle');
    chmodSync(from, 0o444);
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'not a bundle');
    chmodSync(victim, 0o600);
    const inbox = join(dir, 'inbox');
    mkdirSync(inbox);
    symlinkSync(victim, join(inbox, 'x.bundle'));
    // The move back fails (EPERM in an immutable directory); the symlink stays where the bundle was.
    run('chattr', ['+i', inbox]);
    try {
      await putBack(from, join(inbox, 'x.bundle'), 0o6755);
    } finally {
      run('chattr', ['-i', inbox]);
    }
    assert.equal(statSync(victim).mode & 0o7777, 0o600, 'the file the symlink names keeps its mode');
    assert.equal(lstatSync(join(inbox, 'x.bundle')).isSymbolicLink(), true);
  });
});
