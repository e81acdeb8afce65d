// Walks a release tree with lstat (never following a symlink) and describes every entry the way
// a manifest does; anything a release may not contain is refused with its path (docs/FORMAT.md).
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';

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
  abs: string;
}

// Signing wants unreadable files caught before anything is written; verify hashes them anyway.
export interface ScanOptions {
  /** Open every regular file once so an unreadable one fails here (`io`), before signing. Default true. */
  checkReadable?: boolean;
}

const SETID = 0o6000;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function compareBytes(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

function describe(st: Stats, abs: string): 'file' | 'dir' | 'symlink' {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  const kind = st.isFIFO() ? 'a fifo' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
  throw new SentinelError('bad-path', `${kind} cannot be part of a release`, { where: abs });
}

// Every entry under `root` (not the root itself), sorted bytewise by relative path. Devices,
// fifos, sockets, setuid/setgid entries and non-UTF-8 names → bad-path; unreadable → io.
export async function scanTree(root: string, options: ScanOptions = {}): Promise<ScannedEntry[]> {
  const checkReadable = options.checkReadable ?? true;
  const top = resolve(root);
  let st: Stats;
  try {
    st = lstatSync(top);
  } catch (e) {
    throw ioError(e, 'cannot read the tree root', top, 'source-tree');
  }
  if (!st.isDirectory()) throw new SentinelError('not-found', 'tree root is not a directory', { where: top });

  const out: { key: Buffer; entry: ScannedEntry }[] = [];
  const pending: { abs: string; rel: string }[] = [{ abs: top, rel: '' }];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let names: Buffer[];
    try {
      names = readdirSync(dir.abs, { encoding: 'buffer' });
    } catch (e) {
      throw ioError(e, 'cannot list the directory', dir.abs, 'source-tree');
    }
    for (const raw of names) {
      let name: string;
      try {
        name = utf8.decode(raw);
      } catch {
        throw new SentinelError('bad-path', `a file name is not valid UTF-8 (${raw.toString('hex')})`, { where: dir.abs });
      }
      const abs = join(dir.abs, name);
      const rel = dir.rel === '' ? name : `${dir.rel}/${name}`;
      let est: Stats;
      try {
        est = lstatSync(abs);
      } catch (e) {
        throw ioError(e, 'cannot lstat', abs, 'source-tree');
      }
      const type = describe(est, abs);
      const mode = est.mode & 0o7777;
      if (type !== 'symlink' && (mode & SETID) !== 0) {
        throw new SentinelError('bad-path', `setuid/setgid bits (mode ${mode.toString(8)}) are not allowed in a release`, { where: abs });
      }
      const entry: ScannedEntry = { type, path: rel, mode, size: type === 'dir' ? 0 : est.size, abs };
      if (type === 'symlink') {
        try {
          entry.target = readlinkSync(abs);
        } catch (e) {
          throw ioError(e, 'cannot read the symlink', abs, 'source-tree');
        }
      } else if (type === 'file' && checkReadable) {
        try {
          closeSync(openSync(abs, OPEN_FLAGS));
        } catch (e) {
          throw ioError(e, 'cannot open the file for reading', abs, 'source-tree');
        }
      } else if (type === 'dir') {
        pending.push({ abs, rel });
      }
      out.push({ key: Buffer.from(rel, 'utf8'), entry });
    }
    // Let the event loop breathe between directories (the daemon re-verifies while serving).
    await yieldToLoop();
  }
  out.sort((a, b) => compareBytes(a.key, b.key));
  return out.map((o) => o.entry);
}
