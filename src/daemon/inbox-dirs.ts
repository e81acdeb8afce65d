// The inbox's directories held open (docs/SECURITY.md#what-the-inbox-requires): whoever writes the inbox
// can create, rename and replace its entries, so the daemon (root) never uses done/ or rejected/ by
// name. At start it opens the inbox with O_DIRECTORY|O_NOFOLLOW, makes done/ and rejected/ with mkdirat
// and opens them the same way relative to it, and refuses either unless it is a real directory owned by
// root (or the user running the sentinel) and not writable by group or others. Every move is then a
// renameat2 between the held descriptors and a reason is created (O_CREAT|O_EXCL|O_NOFOLLOW) in the
// held rejected/, so a symlink planted in their place, before the start or later, leads nowhere.
import { closeSync, constants, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { dirFdOps, isDirMode, isSymlinkMode, openDirAt, type DirFdOps, type EntryStat } from '../adapters/dir-fd.js';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { ownedDirProblem } from '../vault/safety.js';

export type InboxOutcome = 'done' | 'rejected';

// Why: the same owners the vault's directories accept (src/vault/safety.ts).
function heldDirProblem(st: EntryStat, name: string): string | null {
  if (!isDirMode(st.mode)) return `is not a directory: the inbox's ${name}/ must be a real directory`;
  return ownedDirProblem(st, `the inbox's ${name}/`, 'root (or the user running the sentinel)');
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing held
  }
}

export class InboxDirs {
  private open = true;

  private constructor(
    readonly path: string,
    private readonly ops: DirFdOps,
    private readonly inbox: number,
    private readonly held: Readonly<Record<InboxOutcome, number>>,
  ) {}

  /** Opens and checks the inbox and its done/ and rejected/ (made 0700 when missing); `insecure-path` names the first that is not safe. */
  static openAt(path: string): InboxDirs {
    const ops = dirFdOps();
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch (e) {
      // An existing non-directory (or a symlink to one) is reported by the open below.
      if (errnoOf(e) !== 'EEXIST') throw ioError(e, 'cannot create the inbox', path);
    }
    let inbox: number;
    try {
      inbox = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch (e) {
      // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or ELOOP): say which of the two is there.
      const errno = errnoOf(e);
      if (errno !== 'ELOOP' && errno !== 'ENOTDIR') throw ioError(e, 'cannot open the inbox', path);
      const link = lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true;
      throw new SentinelError('insecure-path', `${link ? 'is a symlink' : 'is not a directory'}: the inbox must be a real directory`, { where: path });
    }
    const opened: number[] = [];
    try {
      for (const name of ['done', 'rejected'] as const) opened.push(InboxDirs.openHeld(ops, inbox, path, name));
    } catch (e) {
      for (const fd of opened) closeQuietly(fd);
      closeQuietly(inbox);
      throw e;
    }
    return new InboxDirs(path, ops, inbox, { done: opened[0]!, rejected: opened[1]! });
  }

  private static openHeld(ops: DirFdOps, inbox: number, inboxPath: string, name: InboxOutcome): number {
    const where = join(inboxPath, name);
    try {
      ops.mkdirAt(inbox, name, 0o700);
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw ioError(e, `cannot create the inbox's ${name}/`, where);
    }
    let fd: number;
    try {
      fd = openDirAt(ops, inbox, name);
    } catch (e) {
      // Say what is there instead (a symlink, a file), not only the errno of the refused open.
      let st: EntryStat | null = null;
      try {
        st = ops.statAt(inbox, name);
      } catch {
        st = null;
      }
      if (st !== null && isSymlinkMode(st.mode)) throw new SentinelError('insecure-path', `is a symlink: the inbox's ${name}/ must be a real directory`, { where });
      if (st !== null && !isDirMode(st.mode)) throw new SentinelError('insecure-path', `is not a directory: the inbox's ${name}/ must be a real directory`, { where });
      throw ioError(e, `cannot open the inbox's ${name}/`, where);
    }
    let problem: string | null;
    try {
      problem = heldDirProblem(ops.statAt(fd, ''), name);
    } catch (e) {
      closeQuietly(fd);
      throw ioError(e, `cannot inspect the inbox's ${name}/`, where);
    }
    if (problem !== null) {
      closeQuietly(fd);
      throw new SentinelError('insecure-path', problem, { where });
    }
    return fd;
  }

  /** Whether `name` is still in the inbox (any type, never followed). */
  has(name: string): boolean {
    try {
      this.ops.statAt(this.inbox, name);
      return true;
    } catch {
      return false;
    }
  }

  /** Moves `name` (whatever it is; a symlink moves as a link) from the inbox into the held done/ or rejected/ under a free name, and returns that name. */
  move(name: string, to: InboxOutcome): string {
    for (let i = 0; ; i++) {
      const target = i === 0 ? name : `${name}.${String(i)}`;
      try {
        this.ops.renameAt(this.inbox, name, this.held[to], target, true);
        return target;
      } catch (e) {
        if (errnoOf(e) !== 'EEXIST') throw ioError(e, `cannot move an inbox bundle to ${to}/`, join(this.path, name));
      }
    }
  }

  /** Writes `<target>.reason` in the held rejected/: created exclusively under a dot-name, then renamed, so it appears whole or not at all. */
  writeReason(target: string, text: string): void {
    const dir = this.held.rejected;
    const tmp = `.${target}.reason.tmp`;
    const where = join(this.path, 'rejected', `${target}.reason`);
    try {
      // A leftover of a crash between the create and the rename (only the daemon writes in rejected/).
      this.ops.unlinkAt(dir, tmp, false);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw ioError(e, 'cannot remove a stale reason file', where);
    }
    let fd: number;
    try {
      fd = this.ops.openAt(dir, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw ioError(e, 'cannot create the reason file', where);
    }
    try {
      const bytes = Buffer.from(text);
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (e) {
      closeQuietly(fd);
      this.removeQuietly(tmp);
      throw ioError(e, 'cannot write the reason file', where);
    }
    closeQuietly(fd);
    try {
      this.ops.renameAt(dir, tmp, dir, `${target}.reason`, false);
    } catch (e) {
      this.removeQuietly(tmp);
      throw ioError(e, 'cannot rename the reason file into place', where);
    }
  }

  private removeQuietly(name: string): void {
    try {
      this.ops.unlinkAt(this.held.rejected, name, false);
    } catch {
      // best effort: the next reason for the same name removes it first
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    for (const fd of [this.held.done, this.held.rejected, this.inbox]) closeQuietly(fd);
  }
}
