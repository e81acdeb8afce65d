// A checkout whose node_modules is missing or incomplete (an interrupted or failed `npm ci`): a command that needs a
// package that is not there prints one line saying a module is missing, which, and to run `npm ci`, exit 2 — not
// `internal: Cannot find module 'tweetnacl' Require stack: …`, which reads as a bug of the sentinel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { assertFails, sentinel } from '../helpers/cli-harness.js';

test('keygen and daemon from a build without node_modules: one line naming the missing module and npm ci, exit 2', { timeout: 60_000 }, async () => {
  const copy = mkdtempSync(join(tmpdir(), 'sentinel-no-modules-'));
  try {
    cpSync(join(packageRoot(), 'package.json'), join(copy, 'package.json'));
    cpSync(join(packageRoot(), 'dist', 'src'), join(copy, 'dist', 'src'), { recursive: true });
    const cli = join(copy, 'dist', 'src', 'cli', 'main.js');
    for (const [args, module] of [[['keygen', '--out', join(copy, 'k')], 'tweetnacl'], [['daemon', '--vault', join(copy, 'v'), '--trust', join(copy, 'k.pub'), '--socket', join(copy, 's.sock')], 'zod|pino|chokidar|execa']] as const) {
      const r = await sentinel([...args], { entry: cli });
      assertFails(r, 'unavailable');
      const line = r.errLines[0]!;
      assert.doesNotMatch(line, /internal|Require stack/, `not a bug report: ${line}`);
      assert.match(line, new RegExp(`module '?(${module})'? is missing`), line);
      assert.match(line, /npm ci/, `says what to do: ${line}`);
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
