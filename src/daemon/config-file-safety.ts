// Who may write the files the daemon's configuration comes from (docs/CONFIG.md): the configuration file decides
// what runs as root (targets[].command) and the trusted keys whose bundles go live, so each file and every
// directory on the way to it must be root's own, as for the vault and the sockets; a file others can write is
// refused before it is read, at start and on reload.
import { realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { ownedDirProblem, unsafeAncestors } from '../vault/safety.js';

/** Refuses (`insecure-path`, naming the file or the directory) a file others could write or replace. A missing one is left to the read. */
export function assertOwnedConfigFile(given: string, what: string): void {
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
  let st;
  try {
    st = statSync(real);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return;
    throw ioError(e, `cannot inspect the ${what}`, given);
  }
  const why = ownedDirProblem(st, `the ${what}`);
  if (why !== null) throw new SentinelError('insecure-path', `${what}: ${why}`, { where: given });
}
