// Calls relative to directory fds (docs/SECURITY.md#signing-a-source-tree): `sentinel sign` walks its
// source through fds it opened and checked, so a directory renamed or swapped for a symlink underneath
// cannot redirect a read. With the native addon these are openat2/mkdirat/renameat2/readlinkat
// (native/src/dir-fd.c); without it, the same calls go through /proc/self/fd/<fd>/<name>, which the
// kernel resolves to the open directory itself (never by its name), with O_NOFOLLOW on every
// component; only RENAME_NOREPLACE is emulated (a check before the rename) there.
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { loadNative } from './native.js';
import type { NativeAddon } from './native.js';

/** What the vault needs to know about an entry: lstat fields, never following a symlink. */
export interface EntryStat {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  dev: number;
  ino: number;
}

// One implementation of the *at calls; every name argument is one path component.
export interface DirFdOps {
  readonly kind: 'native' | 'procfs';
  /** Opens `path` (one or more components) below dirfd; no symlink is followed and `..` is refused. */
  openAt(dirfd: number, path: string, flags: number, mode?: number): number;
  mkdirAt(dirfd: number, name: string, mode: number): void;
  symlinkAt(target: string, dirfd: number, name: string): void;
  renameAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string, noReplace: boolean): void;
  unlinkAt(dirfd: number, name: string, isDir: boolean): void;
  /** lstat of one name in dirfd; "" describes dirfd itself. */
  statAt(dirfd: number, name: string): EntryStat;
  /** The raw names (a name need not be UTF-8; the caller decides). */
  readDir(dirfd: number): Buffer[];
  /** The raw target of the symlink `name` in dirfd. */
  readlinkAt(dirfd: number, name: string): Buffer;
}

function einval(name: string): Error {
  return Object.assign(new Error(`EINVAL: not a single path component: ${JSON.stringify(name)}`), { code: 'EINVAL', path: name });
}

function single(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw einval(name);
  return name;
}

const at = (dirfd: number, name: string): string => `/proc/self/fd/${dirfd}/${single(name)}`;

class ProcfsDirFdOps implements DirFdOps {
  readonly kind = 'procfs' as const;
  openAt(dirfd: number, path: string, flags: number, mode = 0): number {
    const parts = path.split('/');
    let cur = dirfd;
    try {
      for (let i = 0; i < parts.length; i++) {
        const last = i === parts.length - 1;
        const fd = openSync(at(cur, parts[i]!), last ? flags | constants.O_NOFOLLOW : constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW, mode);
        if (cur !== dirfd) closeSync(cur);
        cur = fd;
      }
      return cur;
    } catch (e) {
      if (cur !== dirfd) closeSync(cur);
      throw e;
    }
  }
  mkdirAt(dirfd: number, name: string, mode: number): void {
    mkdirSync(at(dirfd, name), { mode });
  }
  symlinkAt(target: string, dirfd: number, name: string): void {
    symlinkSync(target, at(dirfd, name));
  }
  renameAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string, noReplace: boolean): void {
    const to = at(newDirFd, newName);
    if (noReplace) {
      let exists = true;
      try {
        lstatSync(to);
      } catch {
        exists = false;
      }
      if (exists) throw Object.assign(new Error(`EEXIST: ${newName} exists`), { code: 'EEXIST', path: newName });
    }
    renameSync(at(oldDirFd, oldName), to);
  }
  unlinkAt(dirfd: number, name: string, isDir: boolean): void {
    if (isDir) rmdirSync(at(dirfd, name));
    else unlinkSync(at(dirfd, name));
  }
  statAt(dirfd: number, name: string): EntryStat {
    const st = name === '' ? fstatSync(dirfd) : lstatSync(at(dirfd, name));
    return { mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, size: st.size, dev: st.dev, ino: st.ino };
  }
  readDir(dirfd: number): Buffer[] {
    return readdirSync(`/proc/self/fd/${dirfd}`, { encoding: 'buffer' });
  }
  readlinkAt(dirfd: number, name: string): Buffer {
    return readlinkSync(at(dirfd, name), { encoding: 'buffer' });
  }
}

class NativeDirFdOps implements DirFdOps {
  readonly kind = 'native' as const;
  // Built only by nativeDirFdOps, after it checked that every call below exists.
  constructor(private readonly addon: NativeAddon) {}
  openAt(dirfd: number, path: string, flags: number, mode = 0): number {
    return this.addon.openAt!(dirfd, path, flags, mode);
  }
  mkdirAt(dirfd: number, name: string, mode: number): void {
    this.addon.mkdirAt!(dirfd, name, mode);
  }
  symlinkAt(target: string, dirfd: number, name: string): void {
    this.addon.symlinkAt!(target, dirfd, name);
  }
  renameAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string, noReplace: boolean): void {
    this.addon.renameAt!(oldDirFd, oldName, newDirFd, newName, noReplace);
  }
  unlinkAt(dirfd: number, name: string, isDir: boolean): void {
    this.addon.unlinkAt!(dirfd, name, isDir);
  }
  statAt(dirfd: number, name: string): EntryStat {
    return this.addon.statAt!(dirfd, name);
  }
  readDir(dirfd: number): Buffer[] {
    return this.addon.readDirFd!(dirfd);
  }
  readlinkAt(dirfd: number, name: string): Buffer {
    return this.addon.readlinkAt!(dirfd, name);
  }
}

const NATIVE_CALLS = ['openAt', 'mkdirAt', 'symlinkAt', 'renameAt', 'unlinkAt', 'statAt', 'readDirFd', 'readlinkAt'] as const;

// The native calls when the addon has them, else null (an older build lacks them).
export function nativeDirFdOps(addon: NativeAddon | null = loadNative()): DirFdOps | null {
  if (addon === null || NATIVE_CALLS.some((c) => typeof addon[c] !== 'function')) return null;
  return new NativeDirFdOps(addon);
}

export function procfsDirFdOps(): DirFdOps {
  return new ProcfsDirFdOps();
}

let chosen: DirFdOps | undefined;

// Why: the vault's one way to the *at calls; native where built, /proc/self/fd otherwise.
export function dirFdOps(): DirFdOps {
  chosen ??= nativeDirFdOps() ?? procfsDirFdOps();
  return chosen;
}

/** File types of an lstat mode. */
export const isDirMode = (mode: number): boolean => (mode & constants.S_IFMT) === constants.S_IFDIR;
export const isFileMode = (mode: number): boolean => (mode & constants.S_IFMT) === constants.S_IFREG;
export const isSymlinkMode = (mode: number): boolean => (mode & constants.S_IFMT) === constants.S_IFLNK;

// Why: a directory fd is only as good as the check made on it; opened O_DIRECTORY|O_NOFOLLOW, then fstat-checked by the caller.
export function openDirAt(ops: DirFdOps, dirfd: number, path: string): number {
  return ops.openAt(dirfd, path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

// Why: internal consistency check for callers that expect an fd they opened to still be a directory.
export function assertDirectoryFd(ops: DirFdOps, fd: number, where: string): EntryStat {
  const st = ops.statAt(fd, '');
  if (!isDirMode(st.mode)) throw new SentinelError('tampered', 'expected a directory', { where });
  return st;
}
