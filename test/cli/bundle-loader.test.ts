// The plain runners' loader (src/cli/bundle-loader.ts, docs/ARCHITECTURE.md#start-up): the build's
// V8 code cache only ever saves work. A cache for another source (even of the same length,
// which is all V8 itself compares), a damaged one, one V8 refuses, one a group or another user could
// have written, or none: the file is compiled from its source as it is now. Without the bundle, the
// runner is imported as an ES module. Each load runs in a fresh process: V8 keeps every script it
// compiled in the process and would not look at the cache for a text it has seen.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { loadPlainRunners } from '../../src/cli/bundle-loader.js';
import * as plainRunners from '../../src/cli/plain-runners.js';
import * as plainStatus from '../../src/cli/plain-status.js';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const LOADER = new URL('../../src/cli/bundle-loader.js', import.meta.url).href;

/** A CommonJS file whose answer names its version; every version has the same length. */
function writeVersion(file: string, version: string): void {
  assert.equal(version.length, 3);
  writeFileSync(file, `'use strict';\nfunction answer() { return 'version ${version}'; }\nmodule.exports = { answer };\n`);
}

/** Runs `code` in a fresh process with the loader's `runCommonJs` and `writeCodeCache` in scope; returns its stdout. */
function fresh(code: string): string {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const { runCommonJs, writeCodeCache } = await import(${JSON.stringify(LOADER)});\n${code}`], { encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  return r.stdout.trim();
}

/** What a fresh process makes of the file and its cache: "<cache use> <answer>". */
const load = (file: string): string => fresh(`const r = runCommonJs(${JSON.stringify(file)}); console.log(r.cache, r.exports.answer());`);
const writeCache = (file: string): string => fresh(`writeCodeCache(${JSON.stringify(file)});`);
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

describe('cli: the plain runners\' bundle and its code cache', () => {
  it('uses a cache made for the source, and never one made for another source of the same length', () => {
    const file = join(tempDir('bundle-loader'), 'plain.cjs');
    writeVersion(file, 'old');
    writeCache(file);
    assert.equal(load(file), 'used version old');
    // A stale cache: the build's cache of the old text beside a new text of the same length.
    writeVersion(file, 'new');
    assert.equal(load(file), 'other-source version new');
  });

  it('a damaged, refused, untrusted or missing cache: the file is compiled from its source', (t) => {
    const file = join(tempDir('bundle-loader'), 'plain.cjs');
    writeVersion(file, 'one');
    writeCache(file);
    const whole = readFileSync(`${file}.cache`);
    assert.equal(load(file), 'used version one');

    // One byte of V8's data changed (V8 itself would run it), then the data cut short.
    const flipped = Buffer.from(whole);
    flipped[flipped.length - 8]! ^= 0xff;
    writeFileSync(`${file}.cache`, flipped);
    assert.equal(load(file), 'damaged version one');
    writeFileSync(`${file}.cache`, whole.subarray(0, whole.length - 16));
    assert.equal(load(file), 'damaged version one');

    // Whole and for this source, but V8's own header names another V8 version: V8 refuses it.
    const data = Buffer.from(whole.subarray(64));
    data[4]! ^= 0xff;
    writeFileSync(`${file}.cache`, Buffer.concat([sha256(readFileSync(file)), sha256(data), data]));
    assert.equal(load(file), 'refused-by-v8 version one');

    // Writable by its group, or another user's file: not used however right its content.
    writeFileSync(`${file}.cache`, whole);
    chmodSync(`${file}.cache`, 0o664);
    assert.equal(load(file), 'untrusted version one');
    chmodSync(`${file}.cache`, 0o644);
    if (!needs(t, isRoot(), 'root (chown)')) {
      chownSync(`${file}.cache`, 4242, 4242);
      assert.equal(load(file), 'untrusted version one');
    }

    rmSync(`${file}.cache`);
    assert.equal(load(file), 'absent version one');
  });

  it('without the bundles next to the entry, the runners are the ES modules themselves (status\'s its own)', async () => {
    const dir = tempDir('bundle-loader');
    for (const [words, module] of [
      [['vault', 'verify', 'V'], plainRunners],
      [['deploy', 'B', '--vault', 'V'], plainRunners],
      [['vault', 'status', 'V'], plainStatus],
    ] as const) {
      const runners = await loadPlainRunners(pathToFileURL(`${dir}/`).href, words);
      assert.equal(runners.runPlain, module.runPlain, words.join(' '));
      assert.equal(runners.reportFailure, module.reportFailure, words.join(' '));
    }
  });

  it('a fresh process loads each built bundle with the cache the build made for it', () => {
    for (const name of ['plain.cjs', 'status.cjs']) {
      const bundle = fileURLToPath(new URL(`../../src/cli/${name}`, import.meta.url));
      assert.equal(fresh(`const r = runCommonJs(${JSON.stringify(bundle)}); console.log(r.cache, typeof r.exports.runPlain);`), 'used function', name);
    }
  });
});
