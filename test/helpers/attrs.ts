// Small checks the native and flag tests share: inode flags read back with the real lsattr, and
// the error a native call throws.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { NativeSystemError } from '../../src/adapters/native.js';

/** The flag letters of `path` as the real `lsattr -d` prints them (e.g. `----i---------e-------`). */
export function lsattrLetters(path: string): string {
  const r = spawnSync('lsattr', ['-d', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, `lsattr -d ${path}: ${r.stderr}`);
  return r.stdout.split(' ')[0] ?? '';
}

/** The error `fn` throws; fails the test when it does not throw. */
export function errorOf(fn: () => unknown): NativeSystemError {
  try {
    fn();
  } catch (e) {
    return e as NativeSystemError;
  }
  assert.fail('expected the call to throw');
}
