// `sentinel keygen --out` takes a path prefix: a directory given there (`--out /media/offline/`, or an
// existing directory without the slash) is refused with one line saying what to give, and nothing is
// written: not the hidden `.key`/`.pub` inside it, not a key pair next to it.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';
import { assertFails, assertOk, sentinel } from '../helpers/cli-harness.js';

after(() => cleanupAll());

describe('cli: keygen --out names a prefix, not a directory', () => {
  it('a directory (with or without a trailing slash) is a usage error naming --out, and no file is written', async () => {
    const base = tempDir('cli-keygen-out');
    const media = join(base, 'offline');
    mkdirSync(media);
    for (const out of [`${media}/`, media, `${media}/.`]) {
      const r = await sentinel(['keygen', '--out', out]);
      assertFails(r, 'usage');
      assert.match(r.errLines[0] ?? '', /--out .*directory.*prefix.*\(--out\)$/, r.errLines[0]);
      assert.deepEqual(readdirSync(media), [], `nothing written inside ${media}`);
      assert.deepEqual(readdirSync(base).sort(), ['offline'], `nothing written next to ${media}`);
    }
    assertOk(await sentinel(['keygen', '--out', join(media, 'release')]));
    assert.deepEqual(readdirSync(media).sort(), ['release.key', 'release.pub']);
  });
});
