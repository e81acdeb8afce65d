// The native addon against the real kernel: FS_IOC_GETFLAGS/SETFLAGS read back with lsattr, the
// errno-shaped errors, and sd_notify datagrams received by a real Python AF_UNIX listener.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import type { NativeAddon } from '../../src/adapters/native.js';
import { errorOf, lsattrLetters } from '../helpers/attrs.js';
import { isRoot, needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';

const FS_IMMUTABLE_FL = 0x10;
const addon = loadNative();
const scratch = (base?: string): string => makeTempDir('native', base);

after(() => removeTempDirs());

function ready(t: TestContext): NativeAddon | null {
  if (needs(t, addon !== null, 'native addon (npx node-gyp rebuild --directory=native)')) return null;
  if (needs(t, isRoot(), 'root (CAP_LINUX_IMMUTABLE)')) return null;
  return addon;
}

describe('native flags', () => {
  test('setFlag/getFlags round trip, read back with lsattr -d', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    const f = join(d, 'file');
    writeFileSync(f, 'x');
    assert.equal(n.getFlags(f) & FS_IMMUTABLE_FL, 0);
    assert.equal(n.setFlag(f, FS_IMMUTABLE_FL, true), true);
    assert.equal(n.setFlag(f, FS_IMMUTABLE_FL, true), false, 'second +i changes nothing');
    assert.notEqual(n.getFlags(f) & FS_IMMUTABLE_FL, 0);
    assert.match(lsattrLetters(f), /i/);
    assert.equal(n.setFlag(f, FS_IMMUTABLE_FL, false), true);
    assert.doesNotMatch(lsattrLetters(f), /i/);

    const flags = n.getFlags(d);
    n.setFlags(d, flags | FS_IMMUTABLE_FL);
    assert.match(lsattrLetters(d), /i/);
    n.setFlags(d, flags);
    assert.equal(n.getFlags(d), flags);
  });

  test('writes into a sealed file and directory fail with EPERM', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    const f = join(d, 'file');
    writeFileSync(f, 'x');
    n.setFlagMany([f, d], FS_IMMUTABLE_FL, true);
    assert.throws(() => writeFileSync(f, 'y'), { code: 'EPERM' });
    assert.throws(() => writeFileSync(join(d, 'new'), 'y'), { code: 'EPERM' });
    assert.equal(n.setFlagMany([d, f], FS_IMMUTABLE_FL, false), 2);
    writeFileSync(join(d, 'new'), 'y');
  });

  test('setFlagManyAsync seals on the thread pool and names the failing path', async (t) => {
    const n = ready(t);
    if (n === null) return;
    // tmpfs: ext4 writes fresh data back before the first +i, which only makes the test slow.
    const d = scratch(existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
    const paths: string[] = [];
    for (let i = 0; i < 300; i++) {
      const p = join(d, `f${i}`);
      writeFileSync(p, String(i));
      paths.push(p);
    }
    const pending = n.setFlagManyAsync(paths, FS_IMMUTABLE_FL, true);
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, 300);
    assert.match(lsattrLetters(paths[299]!), /i/);
    assert.equal(await n.setFlagManyAsync(paths, FS_IMMUTABLE_FL, true), 0, 'nothing left to change');
    const missing = join(d, 'missing');
    await assert.rejects(n.setFlagManyAsync([paths[0]!, missing], FS_IMMUTABLE_FL, false), { code: 'ENOENT', path: missing });
    assert.doesNotMatch(lsattrLetters(paths[0]!), /i/, 'paths before the failure were changed');
    assert.equal(await n.setFlagManyAsync(paths, FS_IMMUTABLE_FL, false), 299);
    assert.equal(await n.setFlagManyAsync([], FS_IMMUTABLE_FL, false), 0);
  });

  test('a symlink is never followed: ELOOP with syscall and path', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    writeFileSync(join(d, 'target'), 'x');
    const link = join(d, 'link');
    symlinkSync('target', link);
    const e = errorOf(() => n.getFlags(link));
    assert.equal(e.code, 'ELOOP');
    assert.equal(e.path, link);
    assert.equal(e.errno, -40);
    assert.equal(typeof e.syscall, 'string');
    assert.equal(errorOf(() => n.setFlag(link, FS_IMMUTABLE_FL, true)).code, 'ELOOP');
    assert.doesNotMatch(lsattrLetters(join(d, 'target')), /i/, 'the target was not sealed through the link');
  });

  test('errno names for missing paths, /proc files and batch failures', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    const missing = join(d, 'missing');
    const e = errorOf(() => n.getFlags(missing));
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.path, missing);
    assert.equal(errorOf(() => n.getFlags('/proc/self/status')).code, 'ENOTTY');

    const ok = join(d, 'ok');
    writeFileSync(ok, 'x');
    const batch = errorOf(() => n.setFlagMany([ok, missing], FS_IMMUTABLE_FL, true));
    assert.equal(batch.code, 'ENOENT');
    assert.equal(batch.path, missing, 'the failing path is named');
    assert.match(lsattrLetters(ok), /i/, 'paths before the failure were sealed');
    n.setFlag(ok, FS_IMMUTABLE_FL, false);

    const many = n.getFlagsMany([ok, missing, d]);
    assert.equal(typeof many[0], 'number');
    assert.equal(many[1], 'ENOENT');
    assert.equal(typeof many[2], 'number');
    const link = join(d, 'link');
    symlinkSync('ok', link);
    n.setFlag(ok, FS_IMMUTABLE_FL, true);
    assert.deepEqual(n.getSealBitsMany([ok, d, missing, link, '/dev/null']), [FS_IMMUTABLE_FL, 0, 'ENOENT', 'ELOOP', 'EOPNOTSUPP']);
    n.setFlag(ok, FS_IMMUTABLE_FL, false);
    assert.equal(n.getSealBitsMany([ok])[0], 0);
    assert.equal(n.getSealBitsMany(['/proc/self/status'])[0], 'ENOTTY', 'statx without the attribute falls back to the ioctl');
    assert.throws(() => n.getFlags(42 as unknown as string), TypeError);
    assert.throws(() => n.getFlags(`${ok}\0x`), TypeError);
  });
});

// A Python AF_UNIX SOCK_DGRAM listener that prints each datagram as a JSON line.
const LISTENER = `
import socket, sys, json
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps({"ready": True}), flush=True)
for _ in range(int(sys.argv[2])):
    print(json.dumps({"data": s.recv(65536).decode()}), flush=True)
`;

async function receive(address: string, send: () => void, count: number): Promise<string[]> {
  const py = spawn('python3', ['-c', LISTENER, address, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => py.kill('SIGKILL'), 10_000);
  try {
    const lines = createInterface({ input: py.stdout });
    const got: string[] = [];
    for await (const line of lines) {
      const m = JSON.parse(line) as { ready?: boolean; data?: string };
      if (m.ready === true) send();
      else if (m.data !== undefined) got.push(m.data);
      if (got.length === count) break;
    }
    assert.equal(got.length, count, `listener at ${address} received ${got.length}/${count} datagrams within 10 s`);
    return got;
  } finally {
    clearTimeout(timer);
    py.kill();
  }
}

// A number argument is read as what it is or refused: Node-API's uint32/int32 readers wrap a value out of
// range to its low 32 bits and truncate a fraction, so 2^32 + 2 would pass as 2 (an exclusive lock), and
// 2^32 + FS_IMMUTABLE_FL as +i.
describe('native number arguments', () => {
  const outOfRange = [2 ** 32 + 2, -1, 2.5, Number.NaN, Infinity];
  test('an op, flag or flags value out of 0..2^32-1 (or not an integer) is a RangeError naming it, and nothing is done', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    const f = join(d, 'file');
    writeFileSync(f, 'x');
    const fd = openSync(f, 'r');
    const other = openSync(f, 'r');
    try {
      for (const v of outOfRange) {
        assert.throws(() => n.flockFd?.(fd, v), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'op must be an integer from 0 to 2^32-1' }, String(v));
      }
      for (const v of [2 ** 32 + FS_IMMUTABLE_FL, ...outOfRange.slice(1)]) {
        assert.throws(() => n.setFlagFd?.(fd, v, true), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'flag must be an integer from 0 to 2^32-1' }, String(v));
        assert.throws(() => n.setFlag(f, v, true), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'flag must be an integer from 0 to 2^32-1' }, String(v));
        assert.throws(() => n.setFlags(f, v), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'flags must be an integer from 0 to 2^32-1' }, String(v));
        assert.throws(() => n.setFlagMany([f], v, true), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'flag must be an integer from 0 to 2^32-1' }, String(v));
      }
      assert.equal(n.flockFd?.(other, 2), true, 'no lock was taken through the refused op');
      assert.equal(n.getFlags(f) & FS_IMMUTABLE_FL, 0, 'no +i was set through a refused flag');
      assert.throws(() => n.flockFd?.(fd, '2' as unknown as number), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'op must be a number' });
      assert.throws(() => n.setFlagFd?.(fd, FS_IMMUTABLE_FL, 'yes' as unknown as boolean), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'on must be a boolean' }, 'a refused argument throws, it does not return undefined');
      assert.throws(() => (n.setFlagFd as unknown as (fd: number) => boolean)(fd), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      assert.equal(n.flockFd?.(other, 8), true, 'a plain op still passes (8: unlock)');
    } finally {
      try {
        n.setFlags(f, 0);
      } catch {
        // nothing was set
      }
      closeSync(fd);
      closeSync(other);
    }
  });

  test('a file descriptor out of 0..2^31-1 or not an integer is refused, not wrapped to another descriptor', (t) => {
    const n = ready(t);
    if (n === null) return;
    const d = scratch();
    const f = join(d, 'file');
    writeFileSync(f, 'x');
    const fd = openSync(f, 'r');
    try {
      for (const v of [2 ** 32 + fd, fd + 0.5, -1, Number.NaN]) {
        assert.throws(() => n.flockFd?.(v, 2), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'fd must be an open file descriptor' }, String(v));
      }
      assert.equal(n.flockFd?.(fd, 2), true);
    } finally {
      closeSync(fd);
    }
  });
});

// A string argument is taken whole or refused: Node-API never writes part of a multi-byte character, so a
// string one character too long for the buffer can come back a few bytes short of it, and the call would
// act on a prefix of what it was given (a symlink to another target, a shorter name).
test('a string cut at a UTF-8 character by its buffer is refused as too long, and nothing is made with its prefix', (t) => {
  const n = ready(t);
  if (n === null) return;
  const d = scratch();
  const dirfd = openSync(d, 'r');
  try {
    // symlinkAt's target buffer holds 4096 bytes: 4095 'a' then a 3-byte '€' is 4098, cut at 4095
    const target = `${'a'.repeat(4095)}\u20ac`;
    assert.throws(() => n.symlinkAt?.(target, dirfd, 'link'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: 'target is too long or contains a NUL byte' });
    assert.equal(existsSync(join(d, 'link')) || spawnSync('test', ['-L', join(d, 'link')]).status === 0, false, 'no symlink to the prefix was made');
    assert.throws(() => n.mkdirAt?.(dirfd, `${'a'.repeat(4094)}\u20ac`, 0o700), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: 'name is too long or contains a NUL byte' });
    // the longest that fits still passes
    n.symlinkAt?.('a'.repeat(4095), dirfd, 'fits');
    assert.equal(spawnSync('readlink', [join(d, 'fits')], { encoding: 'utf8' }).stdout.trim().length, 4095);
  } finally {
    closeSync(dirfd);
  }
});

describe('native notify', () => {
  const havePython = spawnSync('python3', ['-c', 'pass']).status === 0;

  test('delivers datagrams to a socket path', async (t) => {
    if (needs(t, addon !== null, 'native addon')) return;
    if (needs(t, havePython, 'python3')) return;
    const sock = join(scratch(), 'notify.sock');
    const got = await receive(sock, () => {
      addon!.notify(sock, 'READY=1\nSTATUS=vault verified');
      addon!.notify(sock, 'WATCHDOG=1');
    }, 2);
    assert.deepEqual(got, ['READY=1\nSTATUS=vault verified', 'WATCHDOG=1']);
  });

  test('delivers to an abstract address (@name)', async (t) => {
    if (needs(t, addon !== null, 'native addon')) return;
    if (needs(t, havePython, 'python3')) return;
    const address = `@sentinel-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    const got = await receive(address, () => addon!.notify(address, 'STOPPING=1'), 1);
    assert.deepEqual(got, ['STOPPING=1']);
  });

  test('no listener: ENOENT / ECONNREFUSED naming the address', (t) => {
    if (needs(t, addon !== null, 'native addon')) return;
    const sock = join(scratch(), 'nobody.sock');
    const e = errorOf(() => addon!.notify(sock, 'READY=1'));
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.syscall, 'sendto');
    assert.equal(e.path, sock);
    const abstract = `@sentinel-none-${randomBytes(6).toString('hex')}`;
    assert.equal(errorOf(() => addon!.notify(abstract, 'READY=1')).code, 'ECONNREFUSED');
    assert.equal(errorOf(() => addon!.notify(`/${'x'.repeat(200)}`, 'READY=1')).code, 'ENAMETOOLONG');
  });
});
