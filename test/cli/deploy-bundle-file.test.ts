// A bundle file that is missing, not a file or unreadable: `deploy --vault` and `deploy --socket` say it
// in the same one line naming the file's absolute path, with the same exit code, before the vault or
// the daemon is touched.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sentinel } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => cleanupAll());

describe('cli: deploy of a bundle file it cannot read', () => {
  it('missing, a directory, unreadable: one line, the same through --vault and --socket', async (t) => {
    if (needs(t, isRoot(), 'root (vault init, setpriv)')) return;
    const dir = tempDir('deploy-file');
    assert.equal((await sentinel(['keygen', '--out', join(dir, 'release')])).code, 0);
    const vault = join(dir, 'vault');
    assert.equal((await sentinel(['vault', 'init', vault, '--trust', join(dir, 'release.pub')])).code, 0);
    const socket = join(dir, 'no-daemon.sock');
    mkdirSync(join(dir, 'a-directory.bundle'));
    writeFileSync(join(dir, 'unreadable.bundle'), 'x');
    chmodSync(join(dir, 'unreadable.bundle'), 0o000);
    // Root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH meets file modes as anyone does.
    const noDac = ['setpriv', '--bounding-set=-dac_override,-dac_read_search'];
    const cases = [
      { name: 'missing.bundle', line: 'sentinel: not-found: bundle file not found', code: 2, prefix: [] as string[] },
      { name: 'a-directory.bundle', line: 'sentinel: usage: bundle is not a regular file', code: 2, prefix: [] },
      { name: 'unreadable.bundle', line: 'sentinel: not-permitted: cannot read the bundle file (EACCES)', code: 2, prefix: noDac },
    ];
    for (const c of cases) {
      const abs = join(dir, c.name);
      for (const [how, target] of [['--vault', vault], ['--socket', socket]] as const) {
        // Relative to the working directory, as typed: the line names the absolute path.
        const r = await sentinel(['deploy', c.name, how, target], { cwd: dir, prefix: c.prefix });
        assert.deepEqual(r.errLines, [`${c.line} (${abs})`], `${c.name} ${how}: ${r.stdout}${r.stderr}`);
        assert.equal(r.code, c.code, `${c.name} ${how}`);
        assert.equal(r.stdout, '');
      }
    }
  });
});
