// The source tree of a release being signed, read through directory fds (docs/SECURITY.md#signing-a-source-tree):
// every directory is opened with O_NOFOLLOW relative to its parent's fd and checked with fstat, every
// entry is described with lstat, and a file is opened later through the same checked chain, so a
// directory swapped for a symlink while signing can never lead outside the tree. Anything a release
// may not contain is refused with its path (docs/FORMAT.md): devices, fifos, sockets, setuid/setgid,
// non-UTF-8 names, and files with more than one hard link.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { dirFdOps, isDirMode, isFileMode, isSymlinkMode } from './dir-fd.js';
import type { DirFdOps, EntryStat } from './dir-fd.js';
import { typeName } from './small-file.js';

// One file, directory or symlink under the scanned root.
export interface ScannedEntry {
  type: 'file' | 'dir' | 'symlink';
  /** Relative to the root, '/'-separated, never empty. */
  path: string;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Bytes for a file; 0 for a directory; the target's length for a symlink. */
  size: number;
  target?: string;
  /** For messages: the root joined with `path`. */
  abs: string;
}

// Signing wants unreadable files caught before anything is written.
export interface ScanOptions {
  /** Open every regular file once so an unreadable one fails here (`io`). Default true. */
  checkReadable?: boolean;
  /** The *at implementation (tests run both). */
  ops?: DirFdOps;
}

const SETID = 0o6000;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Directory fds kept open between the walk and the copy; more are reopened (and checked again). */
const DIR_CACHE = 256;


/** An entry as walked, with the inode it was, so a later open can prove it is still that one. */
interface Walked extends ScannedEntry {
  dev: number;
  ino: number;
}

// Why: the one reader of a tree being signed; entries are fixed by the walk, files are opened later through the same checked directories.
export class SourceTree {
  private readonly dirFds = new Map<string, number>();

  private constructor(
    readonly root: string,
    private readonly ops: DirFdOps,
    private readonly walked: Map<string, Walked>,
    readonly entries: ScannedEntry[],
  ) {}

  // Every entry under `root` (not the root itself), sorted bytewise by relative path.
  static async open(root: string, options: ScanOptions = {}): Promise<SourceTree> {
    const ops = options.ops ?? dirFdOps();
    const top = resolve(root);
    let rootFd: number;
    try {
      rootFd = openSync(top, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      throw ioError(e, 'cannot open the tree root', top, 'source-tree');
    }
    const walked = new Map<string, Walked>();
    const tree = new SourceTree(top, ops, walked, []);
    tree.dirFds.set('', rootFd);
    try {
      const st = fstatSync(rootFd);
      const found: { key: Buffer; entry: Walked }[] = [];
      const pending: { fd: number; rel: string }[] = [{ fd: rootFd, rel: '' }];
      walked.set('', { type: 'dir', path: '', mode: st.mode & 0o7777, size: 0, abs: top, dev: st.dev, ino: st.ino });
      while (pending.length > 0) {
        const dir = pending.pop()!;
        for (const entry of tree.listDir(dir.fd, dir.rel)) {
          walked.set(entry.path, entry);
          found.push({ key: Buffer.from(entry.path, 'utf8'), entry });
          if (entry.type === 'dir') pending.push({ fd: tree.dirFd(entry.path), rel: entry.path });
          else if (entry.type === 'file' && options.checkReadable === true) closeSync(tree.openFile(entry.path));
        }
        await yieldToLoop();
      }
      found.sort((a, b) => Buffer.compare(a.key, b.key));
      for (const f of found) tree.entries.push(toScanned(f.entry));
      return tree;
    } catch (e) {
      tree.close();
      throw e;
    }
  }

  /** The entries of one open directory, each described by lstat and checked against the release rules. */
  private listDir(fd: number, rel: string): Walked[] {
    const absOf = (r: string) => join(this.root, r);
    let names: Buffer[];
    try {
      names = this.ops.readDir(fd);
    } catch (e) {
      throw ioError(e, 'cannot list the directory', absOf(rel), 'source-tree');
    }
    const out: Walked[] = [];
    for (const raw of names) {
      let name: string;
      try {
        name = utf8.decode(raw);
      } catch {
        throw new SentinelError('bad-path', `a file name is not valid UTF-8 (${raw.toString('hex')})`, { where: absOf(rel) });
      }
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = absOf(path);
      let st: EntryStat;
      try {
        st = this.ops.statAt(fd, name);
      } catch (e) {
        throw ioError(e, 'cannot lstat', abs, 'source-tree');
      }
      const mode = st.mode & 0o7777;
      const base = { path, mode, abs, dev: st.dev, ino: st.ino };
      if (isSymlinkMode(st.mode)) {
        let target: string;
        try {
          target = utf8.decode(this.ops.readlinkAt(fd, name));
        } catch (e) {
          if (e instanceof TypeError) throw new SentinelError('bad-path', 'a symlink target is not valid UTF-8', { where: abs });
          throw ioError(e, 'cannot read the symlink', abs, 'source-tree');
        }
        out.push({ ...base, type: 'symlink', size: st.size, target });
        continue;
      }
      if ((mode & SETID) !== 0) throw new SentinelError('bad-path', `setuid/setgid bits (mode ${mode.toString(8)}) are not allowed in a release`, { where: abs });
      if (isDirMode(st.mode)) out.push({ ...base, type: 'dir', size: 0 });
      else if (isFileMode(st.mode)) {
        if (st.nlink !== 1) throw new SentinelError('bad-path', `a file with ${st.nlink} hard links cannot be part of a release (copy the tree without hard links)`, { where: abs });
        out.push({ ...base, type: 'file', size: st.size });
      } else throw new SentinelError('bad-path', `${typeName(st.mode, 'a special file')} cannot be part of a release`, { where: abs });
    }
    return out;
  }

  /** The fd of a walked directory: cached, or reopened through its parent and proved to be the same inode. */
  private dirFd(rel: string): number {
    const cached = this.dirFds.get(rel);
    if (cached !== undefined) return cached;
    const want = this.walked.get(rel);
    if (want?.type !== 'dir') throw new SentinelError('internal', 'not a walked directory', { where: join(this.root, rel) });
    const cut = rel.lastIndexOf('/');
    const parent = this.dirFd(cut < 0 ? '' : rel.slice(0, cut));
    let fd: number;
    try {
      fd = this.ops.openAt(parent, rel.slice(cut + 1), DIR_FLAGS);
    } catch (e) {
      throw changed(e, want.abs, 'directory');
    }
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.dev !== want.dev || st.ino !== want.ino) {
      closeSync(fd);
      throw new SentinelError('io', 'the source tree changed while signing (a directory was replaced)', { where: want.abs });
    }
    if (this.dirFds.size >= DIR_CACHE) this.evictOne();
    this.dirFds.set(rel, fd);
    return fd;
  }

  private evictOne(): void {
    for (const [rel, fd] of this.dirFds) {
      if (rel === '') continue;
      closeSync(fd);
      this.dirFds.delete(rel);
      return;
    }
  }

  // Why: the bytes hashed and the bytes copied come from this one open file, proved to be the walked inode.
  openFile(rel: string): number {
    const want = this.walked.get(rel);
    if (want?.type !== 'file') throw new SentinelError('internal', 'not a walked file', { where: join(this.root, rel) });
    const dir = this.dirFd(dirname(rel) === '.' ? '' : dirname(rel));
    let fd: number;
    try {
      fd = this.ops.openAt(dir, rel.slice(rel.lastIndexOf('/') + 1), FILE_FLAGS);
    } catch (e) {
      throw changed(e, want.abs, 'file');
    }
    const st = fstatSync(fd);
    let why: string | null = null;
    if (!st.isFile() || st.dev !== want.dev || st.ino !== want.ino) why = 'the file was replaced';
    else if (st.nlink !== 1) why = `the file got ${st.nlink} hard links`;
    else if (st.size !== want.size) why = `its size changed from ${want.size} to ${st.size}`;
    else if ((st.mode & 0o7777) !== want.mode) why = `its mode changed from ${want.mode.toString(8)} to ${(st.mode & 0o7777).toString(8)}`;
    if (why !== null) {
      closeSync(fd);
      throw new SentinelError(st.nlink !== 1 && st.isFile() ? 'bad-path' : 'io', `the source tree changed while signing: ${why}`, { where: want.abs });
    }
    return fd;
  }

  // The root fd is in the cache from the start and never evicted: closing the cache closes everything.
  close(): void {
    for (const fd of this.dirFds.values()) closeSync(fd);
    this.dirFds.clear();
  }
}

function toScanned(w: Walked): ScannedEntry {
  const e: ScannedEntry = { type: w.type, path: w.path, mode: w.mode, size: w.size, abs: w.abs };
  if (w.target !== undefined) e.target = w.target;
  return e;
}

/** An open that failed because the walked entry is gone or was swapped (a symlink now: ELOOP). */
function changed(e: unknown, where: string, what: string): SentinelError {
  const err = ioError(e, `cannot open the ${what} again`, where, 'source-tree');
  return new SentinelError(err.code, `the source tree changed while signing: ${err.message}`, { where, cause: e });
}

// Every entry under `root`, sorted bytewise; unreadable files are refused here (`io`).
export async function scanTree(root: string, options: ScanOptions = {}): Promise<ScannedEntry[]> {
  const tree = await SourceTree.open(root, { ...options, checkReadable: options.checkReadable ?? true });
  tree.close();
  return tree.entries;
}
