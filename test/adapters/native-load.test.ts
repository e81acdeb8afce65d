// A present but broken addon degrades to chattr/lsattr like a missing one (native/README.md#fallback):
// a corrupt file, and a real addon that lacks an export, each give null and a reason; a package
// whose built addon is corrupt still seals through chattr, and doctor names the problem.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadNativeFrom } from '../../src/adapters/native.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const scratch = (): string => makeTempDir('native-load');
after(() => removeTempDirs());

describe('loading the addon', () => {
  test('no file: null and no problem (simply not built)', () => {
    assert.deepEqual(loadNativeFrom(join(scratch(), 'absent.node')), { addon: null, problem: null });
  });

  test('a corrupt file: null and the loader error, not a throw', () => {
    const file = join(scratch(), 'sentinel_native.node');
    writeFileSync(file, randomBytes(4096));
    const r = loadNativeFrom(file);
    assert.equal(r.addon, null);
    assert.match(r.problem ?? '', /cannot load/);
    assert.ok(r.problem?.includes(file), 'the problem names the file');
  });

  test('a real addon that lacks exports: null, naming what is missing', (t) => {
    const cc = spawnSync('cc', ['--version']).status === 0;
    if (needs(t, cc, 'a C compiler (cc)')) return;
    const dir = scratch();
    const src = join(dir, 'partial.c');
    writeFileSync(src, `
#include <node_api.h>
static napi_value get_flags(napi_env env, napi_callback_info info) { (void)info; napi_value v; napi_create_uint32(env, 0, &v); return v; }
static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor p = { "getFlags", NULL, get_flags, NULL, NULL, NULL, napi_enumerable, NULL };
  napi_define_properties(env, exports, 1, &p);
  return exports;
}
NAPI_MODULE(partial, init)
`);
    const file = join(dir, 'partial.node');
    const built = spawnSync('cc', ['-shared', '-fPIC', '-I/usr/include/node', '-DNAPI_VERSION=8', '-o', file, src], { encoding: 'utf8' });
    if (needs(t, built.status === 0, `node headers in /usr/include/node (${built.stderr.trim()})`)) return;
    const r = loadNativeFrom(file);
    assert.equal(r.addon, null);
    assert.match(r.problem ?? '', /lacks setFlags, setFlag, setFlagMany, setFlagManyAsync, getFlagsMany, getSealBitsMany, notify/);
  });
});

describe('a package whose built addon is corrupt', () => {
  test('seals through chattr, and doctor reports the broken addon', (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    if (needs(t, spawnSync('chattr', ['-V']).error === undefined, 'chattr (e2fsprogs)')) return;
    // A copy of the package as it ships (package.json, dist/src, node_modules) with a corrupt addon in its place.
    const real = packageRoot();
    const pkg = scratch();
    cpSync(join(real, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(real, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
    symlinkSync(join(real, 'node_modules'), join(pkg, 'node_modules'));
    mkdirSync(join(pkg, 'native', 'build', 'Release'), { recursive: true });
    writeFileSync(join(pkg, 'native', 'build', 'Release', 'sentinel_native.node'), randomBytes(8192));
    const target = join(pkg, 'sealed-file');
    writeFileSync(target, 'x');
    const flags = join(pkg, 'dist', 'src', 'adapters', 'flags.js');
    const script = `
      const F = await import(${JSON.stringify(flags)});
      const store = F.defaultFlagStore();
      await F.seal(store, [${JSON.stringify(target)}]);
      const sealed = await F.isImmutable(store, ${JSON.stringify(target)});
      await F.unseal(store, [${JSON.stringify(target)}]);
      console.log(JSON.stringify({ kind: store.kind, sealed }));
    `;
    const env = { ...process.env, SENTINEL_NO_NATIVE: '' };
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
    assert.equal(r.status, 0, `the copy must not crash: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), { kind: 'chattr', sealed: true });

    const doctor = spawnSync(process.execPath, [join(pkg, 'dist', 'src', 'cli', 'main.js'), 'doctor', '--json'], { encoding: 'utf8', env });
    const report = JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string }[] };
    const check = report.checks.find((c) => c.name === 'native flags addon');
    assert.equal(check?.status, 'degraded');
    assert.match(check?.detail ?? '', /cannot load .*sentinel_native\.node/);
  });
});
