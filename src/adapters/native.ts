// Loads the optional Node-API addon (native/): inode flags by ioctl without a process per file,
// and AF_UNIX datagrams for sd_notify. Callers fall back to chattr/lsattr when it is not built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './package-root.js';

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
   * statx type/mode/size and seal bits of every path (NUL-separated, relative to root), and the
   * SHA-256 of each regular file whose size equals expectedSizes[i] (-1: not hashed), on `threads`
   * libuv threads; one 64-byte record per path (layout in native/src/sentinel-native.c).
   * expectedSizes[i] = -2 hashes any regular file of at most hashAnyMax bytes; `progress[0]`
   * counts the bytes hashed so far. Missing from addons built before it was added.
   */
  /**
   * Copies src to a new dest (0600) out of the page cache: reflink, else O_DIRECT writes, else an
   * in-kernel copy; resolves with 'clone' | 'direct' | 'copy'. Missing from older builds.
   */
  copyColdFileAsync?(src: string, dest: string): Promise<string>;
  inspectFilesAsync?(root: string, paths: string, expectedSizes: Float64Array, threads: number, hashAnyMax?: number, progress?: BigInt64Array): Promise<Buffer>;
}

/** The error shape the addon throws, like Node's own system errors. */
export interface NativeSystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path: string;
}

let loaded: NativeAddon | null | undefined;

// Where `npm run install` (node-gyp rebuild --directory=native, also run by `npm ci`) puts the addon.
export function nativeAddonPath(): string {
  return join(packageRoot(), 'native', 'build', 'Release', 'sentinel_native.node');
}

// The addon, or null when it was not built or SENTINEL_NO_NATIVE=1 asks for the fallback path.
export function loadNative(): NativeAddon | null {
  if (loaded !== undefined) return loaded;
  const file = nativeAddonPath();
  if (process.env.SENTINEL_NO_NATIVE === '1' || !existsSync(file)) {
    loaded = null;
    return loaded;
  }
  const require = createRequire(import.meta.url);
  loaded = require(file) as NativeAddon;
  return loaded;
}

// Why: the vault's kept bundle is read again only by heal; copying it through the page cache costs a
// gigabyte of fresh cache per gigabyte deployed and doubles what the durability sync must flush.
// Resolves with how it was copied, or null when the addon is not built (the caller copies itself).
export async function copyColdFile(src: string, dest: string): Promise<'clone' | 'direct' | 'copy' | null> {
  const addon = loadNative();
  if (addon === null || typeof addon.copyColdFileAsync !== 'function') return null;
  return (await addon.copyColdFileAsync(src, dest)) as 'clone' | 'direct' | 'copy';
}

// Narrowing for errors thrown by the addon (and by node:fs, which has the same shape).
export function isSystemError(e: unknown): e is NativeSystemError {
  return e instanceof Error && typeof (e as Partial<NativeSystemError>).code === 'string';
}
