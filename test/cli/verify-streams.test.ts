// `vault verify` as a monitoring check or cron runs it (stdout to a file or nowhere, stderr a pipe):
// it answers as it always does and, with nothing to write on stderr, never makes process.stderr,
// whose pipe stream would load node:net and its socket code; a terminal still gets the progress bar.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { BIN, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());

describe('vault verify with stderr a pipe', () => {
  test('answers intact (text and --json) without loading node:net; a problem still reaches stderr', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)')) return;
    const dir = tempDir('verify-streams');
    const keys = writeKeyFiles(dir, 'release', testKey('verify-streams'));
    const other = writeKeyFiles(dir, 'other', testKey('verify-streams-other'));
    const vault = join(dir, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'verify-streams']));
    writeTree(join(dir, 'src'), sampleTree('v1'));
    assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
    // Told at the process's exit, in a file: the Node modules it loaded.
    const probe = join(dir, 'probe.cjs');
    const log = join(dir, 'modules.txt');
    writeFileSync(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(log)}, process.moduleLoadList.join('\\n')));\n`);
    const verify = (...args: string[]): { status: number | null; stdout: string; stderr: string; net: boolean } => {
      const r = spawnSync(process.execPath, ['--require', probe, BIN, 'vault', 'verify', vault, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const modules = (spawnSync('cat', [log], { encoding: 'utf8' }).stdout ?? '').split('\n');
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, net: modules.includes('NativeModule net') };
    };
    // stdout a pipe too here (a pipe's stream is node:net's), so only the text's own write may load it: check with --json to a file below.
    const text = verify('--trust', keys.pub, '--live-only');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /is intact/);
    assert.equal(text.stderr, '');
    const out = join(dir, 'out.json');
    const r = spawnSync('sh', ['-c', `"$0" --require "$1" "$2" vault verify "$3" --trust "$4" --live-only --json > "$5"`, process.execPath, probe, BIN, vault, keys.pub, out], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const modules = (spawnSync('cat', [log], { encoding: 'utf8' }).stdout ?? '').split('\n');
    assert.ok(modules.length > 10, 'the probe recorded the modules');
    assert.ok(!modules.includes('NativeModule net'), 'node:net was loaded with stdout to a file and nothing written on stderr');
    // Without --json (a progress bar would be drawn on a terminal): still not made for a pipe.
    const plain = spawnSync('sh', ['-c', `"$0" --require "$1" "$2" vault verify "$3" --trust "$4" --live-only > "$5"`, process.execPath, probe, BIN, vault, keys.pub, out], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    assert.equal(plain.status, 0, plain.stderr);
    assert.ok(!(spawnSync('cat', [log], { encoding: 'utf8' }).stdout ?? '').split('\n').includes('NativeModule net'), 'node:net was loaded for the progress bar check');
    // A failure is still told on stderr (there the stream is made).
    const bad = verify('--trust', other.pub, '--live-only');
    assert.equal(bad.status, 1);
    assert.match(bad.stdout + bad.stderr, /untrusted|not trusted|trust/i);
  });

  test('the progress bar is drawn for a terminal (script(1) gives stderr one), not for a pipe', () => {
    const output = fileURLToPath(new URL('../../src/cli/output.js', import.meta.url));
    const shown = `import(${JSON.stringify(output)}).then((m) => process.stdout.write("shown=" + String(m.progressBar("x", true).shown) + "," + String(m.progressBar("x", false).shown)))`;
    // No single quote in `shown`: it goes into script(1)'s shell command between single quotes.
    const tty = spawnSync('script', ['-qec', `"${process.execPath}" -e '${shown}'`, '/dev/null'], { encoding: 'utf8' });
    assert.equal(tty.status, 0, tty.stderr);
    assert.match(tty.stdout, /shown=true,false/);
    const pipe = spawnSync(process.execPath, ['-e', shown], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(pipe.stdout, /shown=false,false/);
  });
});
