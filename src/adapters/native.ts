// Loads the optional Node-API addon (native/): inode flags by ioctl without a process per file,
// verify's one-pass inspection, deploy's payload staging, the cold copy of a kept bundle, and
// AF_UNIX datagrams for sd_notify, both ways. Callers fall back (chattr/lsattr, JS paths) when it is not
// built or is broken.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Os from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../core/errors.js';
import { useEntryScan } from '../core/manifest-plain.js';
import { packageRoot } from './package-root.js';

// node:os when first needed (the pool's size for a batch job, an errno's name): `vault status`, which
// starts no batch job, never loads it (about 0.3 ms of a fresh process).
let nodeOs: typeof Os | undefined;
const os = (): typeof Os => (nodeOs ??= createRequire(import.meta.url)('node:os') as typeof Os);

// What the addon exports; the first three are the module contract, the rest are batch/fast forms.
export interface NativeAddon {
  getFlags(path: string): number;
  setFlags(path: string, flags: number): void;
  notify(socketAddress: string, message: string): void;
  /** Sets or clears one flag (read-modify-write); true when it changed. */
  setFlag(path: string, flag: number, on: boolean): boolean;
  /** setFlag over many paths in one call; returns how many changed; throws on the first failure (err.path). */
  setFlagMany(paths: string[], flag: number, on: boolean): number;
  /** setFlagMany on the libuv thread pool: large seals never block the event loop. */
  setFlagManyAsync(paths: string[], flag: number, on: boolean): Promise<number>;
  /** Flags of each path, or the errno name ('ELOOP', 'ENOENT', ...) where reading failed. */
  getFlagsMany(paths: string[]): (number | string)[];
  /** FS_IMMUTABLE_FL|FS_APPEND_FL of each path from statx (no open), or the errno name. */
  getSealBitsMany(paths: string[]): (number | string)[];
  /**
   * Copies src to a new dest (0600) out of the page cache: reflink, else O_DIRECT writes, else an
   * in-kernel copy; resolves with 'clone' | 'direct' | 'copy'. Missing from older builds.
   */
  copyColdFileAsync?(src: string, dest: string): Promise<string>;
  /**
   * Writes payload files from an open bundle fd into staging on `threads` libuv threads, hashing
   * what it writes; one 48-byte record per file (layout in native/src/stage.c).
   */
  stageFilesAsync?(bundleFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number): Promise<Buffer>;
  /** stageFilesAsync with dests relative to rootFd, each opened beneath it without following a symlink. */
  stageFilesAtAsync?(bundleFd: number, rootFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number): Promise<Buffer>;
  /** stageFilesAtAsync that also writes every hashed chunk at its bundle offset into keptFd (the kept bundle copy). */
  stageFilesKeptAtAsync?(bundleFd: number, rootFd: number, keptFd: number, dests: string, offsets: Float64Array, sizes: Float64Array, modes: Uint32Array, threads: number): Promise<Buffer>;
  /**
   * verify's pass over the tree at `root` through directory fds, never following a symlink
   * (native/src/inspect-tree.c): it lists the tree, records every entry and hashes every regular
   * file of at most hashAnyMax bytes from the fd its record was read from, on `threads` libuv
   * threads; `progress[0]` counts the bytes hashed so far. Read by adapters/tree-records.ts.
   */
  inspectTreeAsync?(root: string, threads: number, hashAnyMax: number, progress?: BigInt64Array): Promise<Buffer>;
  /** Extended attribute names of a path (not following a symlink) other than the tolerated LSM labels (native/src/xattr.c). Missing from older builds. */
  untoleratedXattrs?(path: string): string[];
  /** The LSM labels verify tolerates (native/src/xattr.c). Missing from older builds. */
  toleratedXattrs?(): string[];
  /** openat(2) below dirfd, never following a symlink or leaving it (native/src/dir-fd.c). Missing from older builds. */
  openAt?(dirfd: number, path: string, flags: number, mode: number): number;
  /** mkdirat(2) of one name in dirfd. */
  mkdirAt?(dirfd: number, name: string, mode: number): void;
  /** symlinkat(2) of one name in dirfd. */
  symlinkAt?(target: string, dirfd: number, name: string): void;
  /** renameat2(2) between two directory fds, RENAME_NOREPLACE when `noReplace`. */
  renameAt?(oldDirFd: number, oldName: string, newDirFd: number, newName: string, noReplace: boolean): void;
  /** unlinkat(2) of one name in dirfd (AT_REMOVEDIR when `isDir`). */
  unlinkAt?(dirfd: number, name: string, isDir: boolean): void;
  /** fstatat(2) with AT_SYMLINK_NOFOLLOW of one name in dirfd ("" for dirfd itself). */
  statAt?(dirfd: number, name: string): { mode: number; uid: number; gid: number; nlink: number; size: number; dev: number; ino: number };
  /** The raw names in a directory fd (no "." or ".."). */
  readDirFd?(dirfd: number): Buffer[];
  /** readlinkat(2) of one name in dirfd: the raw target. */
  readlinkAt?(dirfd: number, name: string): Buffer;
  /** Sets or clears one inode flag through an open fd; true when it changed (native/src/flags.c). */
  setFlagFd?(fd: number, flag: number, on: boolean): boolean;
  /** Removes `name` in dirfd (a file, symlink or whole tree, +i/+a cleared) through fds only, with up to `threads` threads (1..16, default 1: its pool thread and helpers it starts); missing is fine; err.path is relative to dirfd (native/src/remove-walk.c). Missing from older builds. */
  removeTreeAtAsync?(dirfd: number, name: string, threads?: number): Promise<void>;
  /** flock(2) with LOCK_NB: 1 shared, 2 exclusive, 8 unlock; false when another holder conflicts (native/src/lock.c). */
  flockFd?(fd: number, op: number): boolean;
  /**
   * Binds an AF_UNIX datagram socket at `path` with SO_PASSCRED and calls `onMessage` with each
   * datagram and its sender's PID, from the event loop (native/src/notify-listen.c). Missing from older builds.
   */
  NotifyListener?: new (path: string, onMessage: (pid: number, message: string) => void) => { close(): void; ref(on: boolean): void };
  /** syncfs(2) of the filesystem holding `path` (a symlink is not followed), on the libuv pool. Missing from older builds. */
  syncFsAsync?(path: string): Promise<void>;
  /** syncfs(2) through an open descriptor (errors since it was opened); `where` names it in an error. */
  syncFsFdAsync?(fd: number, where: string): Promise<void>;
  /**
   * The entries of a common manifest from `start` through their closing ']', 7 integers each, then the
   * offset after it; null when they are not plain canonical text or not in order (native/src/manifest-scan.c).
   * Missing from older builds.
   */
  scanManifestEntries?(bytes: Uint8Array, start: number): Int32Array | null;
  /**
   * Verify's intact answer from a manifest's bytes and a tree pass's records (native/src/verify-tree.c):
   * [end of created, offset after the entries' ']', entries, files checked, their bytes] when the
   * entries are plain and valid and the tree intact, else null. Missing from older builds.
   */
  verifyManifestTree?(manifest: Uint8Array, records: Uint8Array, maxPathBytes: number, maxFileBytes: number, maxTotalBytes: number, maxEntries: number): Float64Array | null;
  /**
   * Sends signal number `signal` to `pid` only while it is the process that started at `startTicks`,
   * checked and sent through one pidfd (native/src/pidfd-signal.c): 'other' when the PID names another
   * process, 'gone' when none. Missing from older builds.
   */
  signalIdentified?(pid: number, startTicks: number, signal: number): 'sent' | 'gone' | 'other';
  /** SHA-512 of the bytes, copied when it is called, on a pool thread (native/src/digest.c). Missing from older builds. */
  sha512Async?(bytes: Uint8Array): Promise<Buffer>;
  /** SHA-256 / SHA-512 of the bytes on the calling thread (native/src/digest.c). Missing from older builds. */
  sha256?(bytes: Uint8Array): Buffer;
  sha512?(bytes: Uint8Array): Buffer;
  /** A SHA-256 fed in pieces (native/src/digest.c): sha256Update feeds it, sha256Digest answers the digest of what was fed since the last and begins again. Missing from older builds. */
  sha256Stream?(): object;
  sha256Update?(stream: object, bytes: Uint8Array): void;
  sha256Digest?(stream: object): Buffer;
  /** Ed25519 (RFC 8032) through OpenSSL's EVP, node:crypto's own check; false for a signature not 64 bytes or a key not 32; throws only when OpenSSL cannot set the check up (native/src/ed25519.c). Missing from older builds. */
  ed25519Verify?(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean;
  /** RFC 8032 5.1.3's decoding test of a 32-byte point encoding with OpenSSL's big numbers (native/src/ed25519.c). */
  ed25519IsPoint?(encoding: Uint8Array): boolean;
  /** Test hook: the next async job treats queueing its work number `index` as failed (-1: off). */
  _failQueueAt?(index: number): void;
  /** Test hook: a job of `works` works settled through the addon's settle helper; all but the first wait for _settleProbeStep(true). */
  _settleProbe?(works: number): Promise<void>;
  /** Test hook: how many of the probe's works have completed; `release` lets the held ones go on first. */
  _settleProbeStep?(release: boolean): number;
  /** Test hook: the next tree pass, once it has listed directory `dir` (or, for ".", read every file), creates `file`.reached and waits until `file` exists. */
  _inspectGate?(dir: string, file: string): void;
  /** Test hook: the next removal, at entry `rel`, creates `file`.reached and waits for `file`: at 'open' (looked at, not yet opened) or 'list' (a directory opened, flags cleared, not yet listed). */
  _removeGate?(rel: string, file: string, point: 'open' | 'list'): void;
}

/** The error shape the addon throws, like Node's own system errors. */
export interface NativeSystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path: string;
}

/** What loading the addon gave: the addon, or null and why (not built, turned off, or broken). */
export interface NativeLoad {
  addon: NativeAddon | null;
  /** Null when loaded or simply not built / turned off; the failure when a present file is broken. */
  problem: string | null;
}

// The exports every caller relies on; a build lacking one is treated as broken (a stale or foreign file).
const REQUIRED: readonly (keyof NativeAddon)[] = ['getFlags', 'setFlags', 'setFlag', 'setFlagMany', 'setFlagManyAsync', 'getFlagsMany', 'getSealBitsMany', 'notify'];

let loaded: NativeLoad | undefined;

// Where `npm run install` (node-gyp rebuild --directory=native, also run by `npm ci`) puts the addon.
export function nativeAddonPath(): string {
  return join(packageRoot(), 'native', 'build', 'Release', 'sentinel_native.node');
}

// Why: a present but broken addon (a corrupt file, a build for another Node ABI, a stale build
// lacking an export) must degrade to chattr/lsattr like a missing one, not crash every command
// (native/README.md#fallback). Never throws.
export function loadNativeFrom(file: string): NativeLoad {
  if (!existsSync(file)) return { addon: null, problem: null };
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(file);
  } catch (e) {
    return { addon: null, problem: `cannot load ${file}: ${messageOf(e).split('\n')[0] ?? ''}` };
  }
  const missing = REQUIRED.filter((name) => typeof (mod as Record<string, unknown> | null)?.[name] !== 'function');
  if (missing.length > 0) return { addon: null, problem: `${file} lacks ${missing.join(', ')} (a stale or foreign build)` };
  return { addon: mod as NativeAddon, problem: null };
}

// The addon, or null when it was not built, is broken, or SENTINEL_NO_NATIVE=1 asks for the fallback path.
export function loadNative(): NativeAddon | null {
  if (loaded === undefined) {
    loaded = process.env.SENTINEL_NO_NATIVE === '1' ? { addon: null, problem: null } : loadNativeFrom(nativeAddonPath());
    // The manifest's entries are read by the addon's scan from now on (src/core/manifest-plain.ts).
    const addon = loaded.addon;
    if (typeof addon?.scanManifestEntries === 'function') useEntryScan((bytes, start) => addon.scanManifestEntries?.(bytes, start) ?? null);
  }
  return loaded.addon;
}

// Why: `sentinel doctor` names a broken addon (and why) instead of calling it "not built".
export function nativeLoadProblem(): string | null {
  loadNative();
  return loaded?.problem ?? null;
}

/** libuv's pool size as this process started it (UV_THREADPOOL_SIZE, default 4, at most 1024). */
function uvPoolSize(): number {
  const n = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 1024) : 4;
}

// Why: the addon's batch jobs (verify's inspection, deploy's staging) occupy libuv pool threads,
// which every fs.promises call, DNS lookup and zlib job also need; one per core, but always one
// pool thread left free so the daemon's own file I/O is never queued behind a verify
// (native/README.md#threads). At most 16, the addon's own cap.
export function nativeThreads(cores: number = os().availableParallelism(), poolSize: number = uvPoolSize()): number {
  return Math.max(1, Math.min(cores, poolSize - 1, 16));
}

// Why: the vault's kept bundle is read again only by heal; copying it through the page cache costs a
// gigabyte of fresh cache per gigabyte deployed and doubles what the durability sync must flush.
// Resolves with how it was copied, or null when the addon is not built (the caller copies itself).
export async function copyColdFile(src: string, dest: string): Promise<'clone' | 'direct' | 'copy' | null> {
  const addon = loadNative();
  if (addon === null || typeof addon.copyColdFileAsync !== 'function') return null;
  return (await addon.copyColdFileAsync(src, dest)) as 'clone' | 'direct' | 'copy';
}

/** Whether the addon can flush a whole filesystem itself (syncFsNative), without a `sync -f` process. */
export function hasNativeSyncFs(): boolean {
  return typeof loadNative()?.syncFsAsync === 'function';
}

// Why: a deploy makes its staged release durable with one syncfs(2) (docs/VAULT.md#durability);
// false when the addon lacks the call (the caller spawns `sync -f` or fsyncs path by path).
export async function syncFsNative(path: string): Promise<boolean> {
  const addon = loadNative();
  if (addon === null || typeof addon.syncFsAsync !== 'function') return false;
  await addon.syncFsAsync(path);
  return true;
}

// Why: syncfs(2) reports a writeback error only if it happened after its descriptor was opened; a
// deploy flushes through the staging/ descriptor it has held since before it wrote anything, so an
// error during staging (background writeback included) fails the deploy. False without that call.
export async function syncFsFdNative(fd: number, where: string): Promise<boolean> {
  const addon = loadNative();
  if (addon === null || typeof addon.syncFsFdAsync !== 'function') return false;
  await addon.syncFsFdAsync(fd, where);
  return true;
}

/** Whether the addon can write the kept bundle copy while it stages the payload (stageFilesKeptAtAsync). */
export function hasNativeKeptStaging(): boolean {
  return typeof loadNative()?.stageFilesKeptAtAsync === 'function';
}

/** One payload file to stage: where it goes, where its bytes are in the bundle, its mode. */
export interface StageItem {
  dest: string;
  offset: number;
  size: number;
  mode: number;
}

/** What staging one file gave: errno name (ENODATA: the bundle ended early; `kept`: the write into the kept copy failed), or bytes and SHA-256. */
export type StagedResult = { ok: true; written: number; sha256: string } | { ok: false; errno: string | null; kept?: boolean };

let errnoByNumber: Map<number, string> | undefined;

// Why: the addon's result records carry positive errno numbers; the error map and messages want names.
export function errnoName(n: number): string {
  errnoByNumber ??= new Map<number, string>(Object.entries(os().constants.errno).map(([name, n]) => [n, name]));
  return errnoByNumber.get(n) ?? `errno ${n}`;
}

// Why: a 1 GB deploy is bound by writing fresh page cache and by SHA-256 on one core; the addon
// writes and hashes the payload files on every core (each file's digest is of the bytes written).
// `errno: null` means the file was not reached because another failed first. Null without the addon.
// With `rootFd`, each dest is relative to that directory and opened beneath it (null when the addon lacks that form);
// with `keptFd` too, every hashed chunk is also written into that file at its bundle offset (null without that form).
export async function stageFilesNative(bundleFd: number, items: readonly StageItem[], threads: number, rootFd?: number, keptFd?: number): Promise<StagedResult[] | null> {
  const addon = loadNative();
  if (addon === null || typeof addon.stageFilesAsync !== 'function') return null;
  if (rootFd !== undefined && typeof addon.stageFilesAtAsync !== 'function') return null;
  if (keptFd !== undefined && (rootFd === undefined || typeof addon.stageFilesKeptAtAsync !== 'function')) return null;
  const offsets = new Float64Array(items.length);
  const sizes = new Float64Array(items.length);
  const modes = new Uint32Array(items.length);
  items.forEach((it, i) => {
    offsets[i] = it.offset;
    sizes[i] = it.size;
    modes[i] = it.mode;
  });
  const dests = items.map((it) => it.dest).join('\0');
  const raw =
    rootFd === undefined
      ? await addon.stageFilesAsync(bundleFd, dests, offsets, sizes, modes, threads)
      : keptFd === undefined
        ? await addon.stageFilesAtAsync!(bundleFd, rootFd, dests, offsets, sizes, modes, threads)
        : await addon.stageFilesKeptAtAsync!(bundleFd, rootFd, keptFd, dests, offsets, sizes, modes, threads);
  const out: StagedResult[] = [];
  for (let i = 0; i < items.length; i++) {
    const e = raw.readInt32LE(i * 48);
    if (e === 0) out.push({ ok: true, written: raw.readDoubleLE(i * 48 + 8), sha256: raw.toString('hex', i * 48 + 16, i * 48 + 48) });
    else out.push({ ok: false, errno: e < 0 ? null : errnoName(e), ...(raw.readInt32LE(i * 48 + 4) === 1 ? { kept: true } : {}) });
  }
  return out;
}

// Narrowing for errors thrown by the addon (and by node:fs, which has the same shape).
export function isSystemError(e: unknown): e is NativeSystemError {
  return e instanceof Error && typeof (e as Partial<NativeSystemError>).code === 'string';
}
