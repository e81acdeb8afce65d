// The flag store through the chattr/lsattr executables (run by the process adapter): the fallback
// where the addon is not built, and a cross-check against the reference tools.
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import { actionOf, errnoMessage, flagError, FS_APPEND_FL, FS_IMMUTABLE_FL } from './flag-store.js';
import type { FlagStore } from './flag-store.js';

/** Bound of one chattr/lsattr run (a batch takes well under a second; a hung filesystem must not hang the caller). */
const TOOL_TIMEOUT_MS = 120_000;

// lsattr's one-letter names (e2fsprogs lib/e2p/pf.c) → FS_*_FL bits.
const LETTER_BITS: Readonly<Record<string, number>> = {
  s: 0x1, u: 0x2, c: 0x4, S: 0x8, i: 0x10, a: 0x20, d: 0x40, A: 0x80, E: 0x800, m: 0x400,
  I: 0x1000, j: 0x4000, t: 0x8000, D: 0x10000, T: 0x20000, e: 0x80000, V: 0x100000,
  C: 0x800000, x: 0x2000000, N: 0x10000000, P: 0x20000000, F: 0x40000000,
};
const SETTABLE_LETTERS: readonly [number, string][] = [[FS_IMMUTABLE_FL, 'i'], [FS_APPEND_FL, 'a']];

// Too many paths on one command line would hit ARG_MAX; this keeps each chattr call modest.
const CHATTR_BATCH = 2000;

// e2fsprogs prints strerror text; map it back to the errno name.
function errnoFromToolMessage(text: string): string {
  if (/Operation not permitted/i.test(text)) return 'EPERM';
  if (/Permission denied/i.test(text)) return 'EACCES';
  if (/Read-only file system/i.test(text)) return 'EROFS';
  if (/Operation not supported/i.test(text)) return 'EOPNOTSUPP';
  if (/Inappropriate ioctl/i.test(text)) return 'ENOTTY';
  if (/Invalid argument/i.test(text)) return 'EINVAL';
  if (/No such file or directory/i.test(text)) return 'ENOENT';
  if (/Not a directory/i.test(text)) return 'ENOTDIR';
  if (/Too many levels of symbolic links/i.test(text)) return 'ELOOP';
  return 'EIO';
}

function letterFlags(letters: string): number {
  let flags = 0;
  for (const ch of letters) flags |= LETTER_BITS[ch] ?? 0;
  return flags;
}

// A trailing `/.` is kept: it names the directory itself even when what leads there is a symlink
// (a directory held open by the vault, /proc/<pid>/fd/<fd>/.), which resolve() would cut to the link.
const absolute = (p: string): string => (p.endsWith('/.') ? `${resolve(p)}/.` : resolve(p));

// Loads the process adapter only when it first runs a tool (docs/ARCHITECTURE.md#start-up).
export class ChattrFlagStore implements FlagStore {
  readonly kind = 'chattr' as const;

  // Symlinks carry no flags, and chattr/lsattr would follow them (or say "not supported"):
  // refuse them the same way the ioctl addon does.
  private rejectSymlinks(paths: string[], action: string): void {
    for (const p of paths) {
      let isLink: boolean;
      try {
        isLink = lstatSync(p).isSymbolicLink();
      } catch (e) {
        throw flagError(e, p, action);
      }
      if (isLink) throw new SentinelError('bad-path', errnoMessage('ELOOP', action), { where: p });
    }
  }

  private async run(tool: 'chattr' | 'lsattr', args: string[], paths: string[], action: string): Promise<string> {
    // Loaded here, not with the module: the ioctl store (every host with the addon) never needs the
    // process adapter and execa (docs/ARCHITECTURE.md#start-up).
    const { runCommand } = await import('./process.js');
    const r = await runCommand([tool, ...args, ...paths], { timeoutMs: TOOL_TIMEOUT_MS, stripFinalNewline: false, env: { LC_ALL: 'C' } });
    if (!r.ok) {
      const text = r.stderr.trim() || r.message;
      const firstLine = text.split('\n')[0] ?? text;
      // "chattr: <strerror> while <doing> on <path>"
      const where = /\son (.+)$/.exec(firstLine)?.[1] ?? /stat (.+)$/.exec(firstLine)?.[1] ?? paths[0] ?? '';
      if (r.startError !== null) {
        throw new SentinelError('unavailable', `${tool} could not be run: ${firstLine}`, { where, cause: r });
      }
      if (r.timedOut) throw new SentinelError('io', `${tool} did not finish within ${TOOL_TIMEOUT_MS} ms`, { where, cause: r });
      const errno = errnoFromToolMessage(firstLine);
      throw new SentinelError(codeForErrno(errno, 'inode-flags'), `${errnoMessage(errno, action)}: ${firstLine}`, { where, cause: r });
    }
    return String(r.stdout);
  }

  async getFlags(path: string): Promise<number> {
    const [flags] = await this.getFlagsMany([path]);
    return flags ?? 0;
  }

  async getFlagsMany(paths: string[]): Promise<number[]> {
    const abs = paths.map(absolute);
    this.rejectSymlinks(abs, 'read inode flags');
    const out: number[] = [];
    for (let i = 0; i < abs.length; i += CHATTR_BATCH) {
      const chunk = abs.slice(i, i + CHATTR_BATCH);
      const stdout = await this.run('lsattr', ['-d', '--'], chunk, 'read inode flags');
      const lines = stdout.split('\n').filter((l) => l !== '');
      if (lines.length !== chunk.length) {
        throw new SentinelError('io', `lsattr printed ${lines.length} lines for ${chunk.length} paths`, { where: chunk[0] });
      }
      for (const [j, line] of lines.entries()) {
        const expected = chunk[j] ?? '';
        const sp = line.indexOf(' ');
        if (sp < 0 || line.slice(sp + 1) !== expected) {
          throw new SentinelError('io', `unexpected lsattr output: ${line}`, { where: expected });
        }
        out.push(letterFlags(line.slice(0, sp)));
      }
    }
    return out;
  }

  async setFlag(path: string, flag: number, on: boolean): Promise<void> {
    await this.setFlagMany([path], flag, on);
  }

  async setFlagMany(paths: string[], flag: number, on: boolean): Promise<number> {
    let letters = '';
    let rest = flag;
    for (const [bit, letter] of SETTABLE_LETTERS) {
      if ((flag & bit) !== 0) {
        letters += letter;
        rest &= ~bit;
      }
    }
    if (letters === '' || rest !== 0) {
      throw new SentinelError('internal', `the chattr flag store only sets i and a, not 0x${flag.toString(16)}`);
    }
    const abs = paths.map(absolute);
    const action = actionOf(flag, on);
    this.rejectSymlinks(abs, action);
    for (let i = 0; i < abs.length; i += CHATTR_BATCH) {
      await this.run('chattr', [`${on ? '+' : '-'}${letters}`, '--'], abs.slice(i, i + CHATTR_BATCH), action);
    }
    return abs.length;
  }
}
