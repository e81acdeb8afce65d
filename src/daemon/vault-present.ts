// Before the daemon opens anything (audit log, state directory, sockets): is there a vault at vault.path at all?
// A missing one is the operator's step not yet taken (`sentinel vault init`), not a fault a restart can outlive,
// so it is refused as configuration (exit 3, which the unit does not restart), naming the command that makes it.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import type { DaemonConfig } from './config.js';

/** What is at `path` instead of a vault, or null when it may be one (a symlink or an unreadable path: openVault says why). */
function notAVault(path: string): string | null {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    const errno = errnoOf(e);
    return errno === 'ENOENT' || errno === 'ENOTDIR' ? 'no such directory' : null;
  }
  if (st.isSymbolicLink()) return null;
  if (!st.isDirectory()) return 'not a directory';
  try {
    lstatSync(join(path, 'vault.json'));
    return null;
  } catch (e) {
    return errnoOf(e) === 'ENOENT' ? 'a directory without vault.json' : null;
  }
}

// Why: the one line an operator acts on: where the daemon looked, and the command that creates the vault there.
export function assertVaultPresent(config: DaemonConfig): void {
  const path = config.vault.path;
  const what = notAVault(path);
  if (what === null) return;
  const threshold = config.vault.threshold > 1 ? ` --threshold ${String(config.vault.threshold)}` : '';
  const init = `sentinel vault init ${path} --trust ${config.vault.trust.join(' ')}${threshold}`;
  throw new SentinelError('not-found', `no vault at vault.path yet (${what}): create it with '${init}' (or correct vault.path), then start the daemon again`, { where: `vault.path: ${path}` });
}
