// The digests checkKeptBundle compares a stored bundle's payload files with: the addon's SHA-256
// fed chunk by chunk (native/src/digest.c's sha256Stream) and node:crypto's, the fallback without the
// addon, held to each other and to a one-shot SHA-256 of each file over random files cut into random
// chunks; the stream's misuse; and `vault verify`'s default scope (which checks the stored bundle)
// run as a process: it loads no node:crypto where the addon is built, and answers the same without it.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { fileDigests } from '../../src/adapters/kept-bundle.js';
import { loadNative } from '../../src/adapters/native.js';
import { testKey } from '../helpers/core-factory.js';
import { BIN, assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { runs } from '../helpers/properties.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';

after(() => cleanupAll());
const addon = loadNative();
const oneShot = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('fileDigests: the addon and node:crypto give every file its own SHA-256', () => {
  test('property: files of random sizes (empty ones too) fed in chunks that cut across them', (t) => {
    if (needs(t, typeof addon?.sha256Stream === 'function', 'the native addon with sha256Stream')) return;
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 3000 }), { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 8 }), (sizes, cuts) => {
        const data = randomBytes(sizes.reduce((a, b) => a + b, 0));
        const want = sizes.map((_, i) => oneShot(data.subarray(sizes.slice(0, i).reduce((a, b) => a + b, 0), sizes.slice(0, i + 1).reduce((a, b) => a + b, 0))));
        for (const d of [fileDigests(true), fileDigests(false)]) {
          // As checkKeptBundle feeds them: chunks of the given lengths in turn, each cut at the files' ends.
          const got: string[] = [];
          let file = 0;
          let left = sizes[0]!;
          let pos = 0;
          let c = 0;
          const finish = (): void => {
            while (file < sizes.length && left === 0) {
              got.push(d.digest());
              left = sizes[++file] ?? 0;
            }
          };
          finish();
          while (pos < data.length) {
            const chunk = data.subarray(pos, Math.min(data.length, pos + cuts[c++ % cuts.length]!));
            pos += chunk.length;
            for (let off = 0; off < chunk.length; ) {
              const take = Math.min(left, chunk.length - off);
              d.update(chunk.subarray(off, off + take));
              off += take;
              left -= take;
              finish();
            }
          }
          assert.deepEqual(got, want);
        }
      }),
      { numRuns: runs(200) },
    );
  });

  test("the addon's stream: a digest begins it again, streams are independent, and only its own stream is taken", (t) => {
    if (needs(t, typeof addon?.sha256Stream === 'function', 'the native addon with sha256Stream')) return;
    const n = addon!;
    const a = n.sha256Stream!();
    const b = n.sha256Stream!();
    n.sha256Update!(a, Buffer.from('hello '));
    n.sha256Update!(b, Buffer.from('other'));
    n.sha256Update!(a, new Uint8Array(Buffer.from('world')));
    n.sha256Update!(a, new Uint8Array(0));
    assert.equal(n.sha256Digest!(a).toString('hex'), oneShot(Buffer.from('hello world')));
    assert.equal(n.sha256Digest!(a).toString('hex'), oneShot(new Uint8Array(0)), 'nothing fed since the last digest');
    assert.equal(n.sha256Digest!(b).toString('hex'), oneShot(Buffer.from('other')));
    const call = (name: 'sha256Update' | 'sha256Digest', ...args: unknown[]): unknown => (n[name] as unknown as (...a: unknown[]) => unknown)(...args);
    for (const notStream of [{}, Object.create(a) as object, null, undefined, 'x', Buffer.alloc(8)]) {
      assert.throws(() => call('sha256Update', notStream, Buffer.alloc(1)), TypeError);
      assert.throws(() => call('sha256Digest', notStream), TypeError);
    }
    assert.throws(() => call('sha256Update', a, 'bytes'), TypeError);
    assert.throws(() => call('sha256Update', a, new Uint16Array(2)), TypeError);
    assert.throws(() => call('sha256Update', a), TypeError);
    assert.throws(() => call('sha256Digest'), TypeError);
    // A refused call fed nothing.
    assert.equal(n.sha256Digest!(a).toString('hex'), oneShot(new Uint8Array(0)));
  });
});

describe('vault verify (every kept release and stored bundle) as a process', () => {
  test('loads no node:crypto where the addon is built, and answers the same without the addon', async (t) => {
    if (needs(t, isRoot(), 'root (chattr)') || needs(t, typeof addon?.sha256Stream === 'function', 'the native addon with sha256Stream')) return;
    const dir = tempDir('kept-bundle');
    const keys = writeKeyFiles(dir, 'release', testKey('kept-bundle'));
    const vault = join(dir, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'kept-bundle']));
    writeTree(join(dir, 'src'), sampleTree('v1'));
    assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
    // Told at the process's exit, on stderr: whether Node's crypto module was loaded.
    const probe = join(dir, 'probe.cjs');
    writeFileSync(probe, "process.on('exit', () => require('node:fs').writeSync(2, `node:crypto loaded: ${process.moduleLoadList.includes('NativeModule crypto')}\\n`));\n");
    const verify = (env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, ['--require', probe, BIN, 'vault', 'verify', vault, '--trust', keys.pub, '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
    const native = verify({});
    assert.equal(native.status, 0, native.stderr);
    assert.match(native.stderr, /node:crypto loaded: false/);
    const report = JSON.parse(native.stdout) as { ok: boolean; kept: { bundles: string[] } };
    assert.equal(report.ok, true);
    assert.equal(report.kept.bundles.length, 1, 'the stored bundle was checked');
    const fallback = verify({ SENTINEL_NO_NATIVE: '1' });
    assert.equal(fallback.status, 0, fallback.stderr);
    assert.match(fallback.stderr, /node:crypto loaded: true/);
    assert.deepEqual(JSON.parse(fallback.stdout), report);
  });
});
