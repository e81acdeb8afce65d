// The one errno → error-code map (docs/ARCHITECTURE.md#errors-and-the-errno-map): the base table,
// each context's overrides, the ioError helper built on it, and real system errors through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SentinelError, codeForErrno, errnoOf, exitCodeFor, ioError, messageOf, type ErrnoContext, type ErrorCode } from '../../src/core/index.js';

const CONTEXTS: ErrnoContext[] = ['file', 'inode-flags', 'tree-entry', 'source-tree', 'kernel-interface', 'connect', 'bpf'];

test('base table: the same errno gives the same code in the default context', () => {
  const expected: Record<string, ErrorCode> = {
    ENOENT: 'not-found', ENOTDIR: 'not-found', ESRCH: 'not-found',
    EPERM: 'not-permitted', EACCES: 'not-permitted', EROFS: 'not-permitted',
    EEXIST: 'exists',
    EOPNOTSUPP: 'unavailable', ENOTSUP: 'unavailable', ENOTTY: 'unavailable', ENOSYS: 'unavailable', ECONNREFUSED: 'unavailable',
    EINVAL: 'io', ELOOP: 'io', EIO: 'io', ENOSPC: 'io', EISDIR: 'io', EDQUOT: 'io',
  };
  for (const [errno, code] of Object.entries(expected)) assert.equal(codeForErrno(errno), code, errno);
  assert.equal(codeForErrno(undefined), 'io', 'no errno at all is an I/O failure');
  assert.equal(codeForErrno('ENOENT', 'file'), codeForErrno('ENOENT'), "'file' is the default context");
});

test('EINVAL: no +i support from the flags ioctl, an absent feature from a cgroup file, plain io elsewhere', () => {
  assert.equal(codeForErrno('EINVAL', 'inode-flags'), 'no-immutable-support');
  assert.equal(codeForErrno('EINVAL', 'kernel-interface'), 'unavailable');
  assert.equal(codeForErrno('EINVAL', 'file'), 'io');
  assert.equal(codeForErrno('EINVAL', 'tree-entry'), 'io');
});

test('inode-flags: every "this filesystem has no flags" errno is no-immutable-support; a symlink is bad-path', () => {
  for (const errno of ['EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'EINVAL']) assert.equal(codeForErrno(errno, 'inode-flags'), 'no-immutable-support', errno);
  assert.equal(codeForErrno('ELOOP', 'inode-flags'), 'bad-path');
  assert.equal(codeForErrno('EROFS', 'inode-flags'), 'not-permitted');
  assert.equal(codeForErrno('ENOENT', 'inode-flags'), 'not-found');
});

test('tree-entry: anything but a regular file is bad-path (integrity), unreadable is not-permitted', () => {
  for (const errno of ['ELOOP', 'EOPNOTSUPP', 'ENOTSUP', 'ENOTREG', 'EISDIR']) assert.equal(codeForErrno(errno, 'tree-entry'), 'bad-path', errno);
  assert.equal(exitCodeFor(codeForErrno('ELOOP', 'tree-entry')), 1);
  assert.equal(codeForErrno('EACCES', 'tree-entry'), 'not-permitted');
  assert.equal(codeForErrno('ENOENT', 'tree-entry'), 'not-found');
});

test('source-tree: an unreadable source file is io; connect: no listener is unavailable', () => {
  assert.equal(codeForErrno('EACCES', 'source-tree'), 'io');
  assert.equal(codeForErrno('EPERM', 'source-tree'), 'io');
  assert.equal(codeForErrno('ENOENT', 'source-tree'), 'not-found');
  assert.equal(codeForErrno('ENOENT', 'connect'), 'unavailable');
  assert.equal(codeForErrno('ECONNREFUSED', 'connect'), 'unavailable');
  assert.equal(codeForErrno('EACCES', 'connect'), 'not-permitted');
});

test('bpf: a missing BTF, tracepoint or program, or a verifier refusal, is unavailable; EPERM stays not-permitted', () => {
  for (const errno of ['ENOENT', 'ESRCH', 'EINVAL', 'E2BIG', 'EBADF']) assert.equal(codeForErrno(errno, 'bpf'), 'unavailable', errno);
  assert.equal(codeForErrno('EPERM', 'bpf'), 'not-permitted');
  assert.equal(codeForErrno('EACCES', 'bpf'), 'not-permitted');
});

test('a context changes only what it names: every other errno reads the base table', () => {
  const sample = ['ENOENT', 'ENOTDIR', 'EPERM', 'EEXIST', 'EIO', 'ENOSPC', 'ESRCH', 'EROFS', 'EBUSY'];
  const overridden: Record<ErrnoContext, string[]> = {
    file: [],
    'inode-flags': [],
    'tree-entry': [],
    'source-tree': ['EPERM'],
    'kernel-interface': [],
    connect: ['ENOENT'],
    bpf: ['ENOENT', 'ESRCH'],
  };
  for (const ctx of CONTEXTS) {
    for (const errno of sample) {
      if (overridden[ctx].includes(errno)) assert.notEqual(codeForErrno(errno, ctx), codeForErrno(errno), `${ctx} ${errno}`);
      else assert.equal(codeForErrno(errno, ctx), codeForErrno(errno), `${ctx} ${errno}`);
    }
  }
});

test('errnoOf reads errno names only: Node ERR_* codes and non-errors have none', () => {
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
  assert.equal(errnoOf({ code: 'EPERM' }), 'EPERM');
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })), undefined);
  assert.equal(errnoOf(new SentinelError('io', 'x')), undefined, "a SentinelError's code is not an errno");
  assert.equal(errnoOf('ENOENT'), undefined);
  assert.equal(errnoOf(null), undefined);
  assert.equal(errnoOf({ code: 2 }), undefined);
});

test('ioError: a real system error gets its mapped code, the errno in the message, its where and cause', () => {
  const missing = join(tmpdir(), `sentinel-errno-${process.pid}-missing`, 'file');
  let cause: unknown;
  try {
    readFileSync(missing);
  } catch (e) {
    cause = e;
  }
  const err = ioError(cause, 'cannot read the thing', missing);
  assert.equal(err.code, 'not-found');
  assert.equal(err.where, missing);
  assert.equal(err.cause, cause);
  assert.match(err.message, /ENOENT/);
  assert.equal(ioError(cause, 'cannot connect', missing, 'connect').code, 'unavailable');
});

test('ioError passes a SentinelError through; a value without an errno is io with its text', () => {
  const inner = new SentinelError('hash-mismatch', 'inner', { where: 'a' });
  assert.equal(ioError(inner, 'outer', 'b'), inner);
  const odd = ioError('boom', 'cannot do it', 'w');
  assert.equal(odd.code, 'io');
  assert.match(odd.message, /boom/);
});

test('messageOf: an Error gives its message, anything else its string form', () => {
  assert.equal(messageOf(new Error('disk on fire')), 'disk on fire');
  assert.equal(messageOf('plain'), 'plain');
  assert.equal(messageOf(42), '42');
  assert.equal(messageOf(undefined), 'undefined');
});
