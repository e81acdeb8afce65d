// Who may write the files the daemon's configuration comes from (docs/CONFIG.md): the configuration file decides
// what runs as root (targets[].command) and the trusted keys whose bundles go live, so each file and every
// directory on the way to it must be root's own, as for the vault and the sockets; a file others can write is
// refused before it is read, at start and on reload. The owner rule is applied to the opened file itself and the
// bytes come from that descriptor, so a file someone else creates at the name after the check is never read.
import { lstatSync, realpathSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { readSmallFile, typeName } from '../adapters/small-file.js';
import { O_PATH, procFdAvailable } from '../adapters/proc-fd.js';
import { ownedDirProblem, unsafeAncestors } from '../vault/safety.js';

/** Refuses (`insecure-path`, naming the directory) a file below a directory others could write. */
function assertSafeDirectories(given: string, what: string): void {
  // A relative --config is relative to the working directory; the directories above it count as well.
  const file = resolve(given);
  let real = file;
  try {
    real = realpathSync(file);
  } catch (e) {
    if (errnoOf(e) !== 'ENOENT' && errnoOf(e) !== 'ENOTDIR') throw ioError(e, `cannot inspect the ${what}`, given);
  }
  for (const path of real === file ? [file] : [file, real]) {
    const first = unsafeAncestors(path)[0];
    if (first !== undefined) throw new SentinelError('insecure-path', `${what}: ${first.message}`, { where: first.path });
  }
}

export interface OwnedFileOptions {
  /** What the file is, for messages about the file ("configuration file", "trusted public key"). */
  what: string;
  /** The setting that names it, for messages about who may write it (default: `what`). */
  setting?: string;
  maxBytes: number;
  /** The code for a file that is not a regular file or too large. */
  badFileCode: ErrorCode;
  /** Where to report problems with the file itself (default: the path). */
  where?: string;
}

/**
 * Reads a file the daemon's configuration comes from: the directories on the way (given and resolved) must be
 * root's own and not writable by others, before the open and again after the read; the opened file itself must
 * be a regular file, root's own and not writable by others (`insecure-path`, naming it).
 */
export async function readOwnedConfigFile(given: string, opts: OwnedFileOptions): Promise<string> {
  const setting = opts.setting ?? opts.what;
  assertSafeDirectories(given, setting);
  let opened: { dev: number; ino: number } | null = null;
  // Nothing is opened for reading before the name is judged: another user's symlink there is refused, and the
  // file is first taken with O_PATH (which opens nothing: no fifo writer released, no device armed) and read
  // only if it is a regular file, through that descriptor where /proc is mounted.
  const named = await nameOwnedFile(given, setting, opts);
  let text: string;
  try {
    text = await readSmallFile(named.readPath, {
      what: `the ${opts.what}`,
      maxBytes: opts.maxBytes,
      badFileCode: opts.badFileCode,
      where: opts.where ?? given,
      accept: (st) => {
        const why = ownedDirProblem(st, `the ${setting}`);
        if (why !== null) throw new SentinelError('insecure-path', `${setting}: ${why}`, { where: given });
        opened = st;
      },
    });
  } finally {
    await named.close();
  }
  // A directory missing at the first look and created since by someone else shows now.
  assertSafeDirectories(given, setting);
  assertSameName(given, setting, opened);
  return text;
}

async function nameOwnedFile(given: string, setting: string, opts: OwnedFileOptions): Promise<{ readPath: string; close(): Promise<void> }> {
  const where = opts.where ?? given;
  const link = lstatOrNull(given);
  if (link?.isSymbolicLink() === true) {
    const why = ownedDirProblem({ uid: link.uid, mode: 0 }, `a symlink naming the ${setting}`);
    if (why !== null) throw new SentinelError('insecure-path', `${setting}: is a symlink ${why}`, { where: given });
  }
  let fh;
  try {
    fh = await open(given, O_PATH);
  } catch (e) {
    throw ioError(e, `cannot open the ${opts.what}`, where);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SentinelError(opts.badFileCode, `the ${opts.what} is ${typeName(st.mode)}, not a regular file`, { where });
    const why = ownedDirProblem(st, `the ${setting}`);
    if (why !== null) throw new SentinelError('insecure-path', `${setting}: ${why}`, { where: given });
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw ioError(e, `cannot inspect the ${opts.what}`, where);
  }
  const held = fh;
  return { readPath: procFdAvailable() ? `/proc/self/fd/${String(held.fd)}` : given, close: () => held.close().catch(() => undefined) };
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * The name, looked at again after the read, is still what was read: a symlink there must be root's own (another
 * user's would choose which root-owned file is read, as `fs.protected_symlinks` forbids), and a file there the
 * very file read.
 */
function assertSameName(given: string, setting: string, opened: { dev: number; ino: number } | null): void {
  let st;
  try {
    st = lstatSync(given);
  } catch (e) {
    throw new SentinelError('insecure-path', `${setting}: removed or replaced while it was read (${errnoOf(e) ?? 'error'})`, { where: given, cause: e });
  }
  if (st.isSymbolicLink()) {
    const why = ownedDirProblem({ uid: st.uid, mode: 0 }, `a symlink naming the ${setting}`);
    if (why !== null) throw new SentinelError('insecure-path', `${setting}: is a symlink ${why}`, { where: given });
  } else if (opened === null || st.dev !== opened.dev || st.ino !== opened.ino) {
    throw new SentinelError('insecure-path', `${setting}: replaced while it was read`, { where: given });
  }
}
