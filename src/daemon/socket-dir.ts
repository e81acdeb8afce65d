// Who may write where the daemon binds a Unix socket (docs/SECURITY.md#what-the-daemons-sockets-require): the
// socket's directory and every directory on the way to it must be root's own, as for the vault. The socket is
// chowned and chmodded by path after binding; whoever could write its directory could swap the fresh socket for a
// symlink in between and have root give any file (/etc/shadow) to the socket's group, mode 0660.
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { ownedDirProblem, unsafeAncestors } from '../vault/safety.js';

/**
 * Refuses (`insecure-path`, naming the directory) a socket path whose directory, or a directory on the way to it,
 * is not root's own. Called before the directory is created and again before binding.
 */
export function assertSafeSocketDir(socketPath: string, what: string): void {
  const first = unsafeAncestors(socketPath)[0];
  if (first !== undefined) throw new SentinelError('insecure-path', `${what}: ${first.message}`, { where: first.path });
  const dir = dirname(socketPath);
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return; // created next (0750, root) by the caller, then checked again
    throw ioError(e, `cannot inspect the ${what} directory`, dir);
  }
  const why = st.isDirectory() ? ownedDirProblem(st, "a socket's directory") : 'is not a directory';
  if (why !== null) throw new SentinelError('insecure-path', `${what}: ${why}`, { where: dir });
}
