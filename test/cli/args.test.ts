// The CLI's own small pure pieces: duration and integer flags, and the sha256sum rendering of a
// manifest checked by the real coreutils on names with spaces and non-ASCII characters.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isSentinelError } from '../../src/core/index.js';
import { parseDuration, positiveInteger } from '../../src/cli/args.js';
import { manifestAsSha256sum } from '../../src/cli/vault-commands.js';
import { T0, ONE_YEAR_LATER, makeManifest, sha256Hex } from '../helpers/core-factory.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => cleanupAll());

function usageError(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => isSentinelError(e, 'usage'));
}

describe('cli args', () => {
  it('parseDuration: units s m h d w, rejects everything else as a usage error', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('12h'), 43_200_000);
    assert.equal(parseDuration('30d'), 2_592_000_000);
    assert.equal(parseDuration('2w'), 1_209_600_000);
    for (const bad of ['', '30', 'd', '-1d', '1.5d', '0d', '10y', '1d2h', '99999999999999999999d']) usageError(() => parseDuration(bad));
  });

  it('positiveInteger: digits only, >= 1, safe', () => {
    const p = positiveInteger('--version');
    assert.equal(p('1'), 1);
    assert.equal(p('42'), 42);
    for (const bad of ['0', '-1', '1.0', '1e3', ' 1', 'x', '', '9007199254740993']) usageError(() => p(bad));
  });
});

describe('vault manifest --format sha256sum rendering', () => {
  it('lists files only, in manifest order, and the real sha256sum -c accepts it (spaces, UTF-8)', () => {
    const tree = [
      { type: 'dir' as const, path: 'a b' },
      { type: 'file' as const, path: 'a b/ü ñ.txt', content: 'phi\n' },
      { type: 'file' as const, path: 'z.bin', content: new Uint8Array([0, 255, 10]) },
      { type: 'symlink' as const, path: 'link', target: 'z.bin' },
    ];
    const m = makeManifest({ vaultId: 'v', version: 1, created: T0, expires: ONE_YEAR_LATER, tree });
    const text = manifestAsSha256sum(m);
    assert.equal(text, `${sha256Hex('phi\n')}  a b/ü ñ.txt\n${sha256Hex(new Uint8Array([0, 255, 10]))}  z.bin\n`);
    const dir = tempDir('cli-sha');
    mkdirSync(join(dir, 'a b'));
    writeFileSync(join(dir, 'a b', 'ü ñ.txt'), 'phi\n');
    writeFileSync(join(dir, 'z.bin'), new Uint8Array([0, 255, 10]));
    writeFileSync(join(dir, 'list'), text);
    const ok = spawnSync('sha256sum', ['-c', '--strict', 'list'], { cwd: dir, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    writeFileSync(join(dir, 'z.bin'), 'changed');
    const bad = spawnSync('sha256sum', ['-c', 'list'], { cwd: dir, encoding: 'utf8' });
    assert.equal(bad.status, 1, 'sha256sum -c must catch a changed file');
  });
});
