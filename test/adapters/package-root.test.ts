// packageRoot finds the project from compiled code (dist/), which is how the native addon and the
// hash worker are located; and says so clearly outside the project.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/adapters/package-root.js';
import { nativeAddonPath } from '../../src/adapters/native.js';

test('packageRoot is the directory of omnimind-sentinel package.json, from dist/ too', () => {
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
  assert.equal(pkg.name, 'omnimind-sentinel');
  assert.equal(packageRoot(import.meta.url), root);
  assert.equal(nativeAddonPath(), join(root, 'native', 'build', 'Release', 'sentinel_native.node'));
  assert.ok(existsSync(join(root, 'dist', 'src', 'adapters', 'hash-worker.js')), 'the hash worker is found from the root');
});

test('outside the project: internal error naming the URL', () => {
  assert.throws(() => packageRoot('file:///proc/self/x.js'), { code: 'internal', where: 'file:///proc/self/x.js' });
});
