// Before the daemon opens anything (audit log, state directory, sockets): is there a vault at vault.path at all?
// Nothing there yet is the operator's step not yet taken (`sentinel vault init`), not a fault a restart can
// outlive, so it is refused as configuration (exit 3, which the unit does not restart), naming the command that
// makes the vault. Anything that may be a damaged vault is left to openVault, which refuses it with the start audited.
import { lstatSync, readdirSync } from 'node:fs';
import { SentinelError } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import { NAMES } from '../vault/paths.js';
import { unsafeAncestors } from '../vault/safety.js';
import type { DaemonConfig } from './config.js';

/** What is at vault.path instead of a vault, for the refusal; null: a vault, or maybe a damaged one (openVault judges). */
type Absence = { what: string; init: boolean } | null;

const VAULT_NAMES = new Set<string>([NAMES.config, NAMES.current, NAMES.currentTmp, NAMES.releases, NAMES.bundles, NAMES.state, NAMES.staging]);

function absence(path: string): Absence {
  // Below a directory others can write, a missing vault may have been removed: openVault's insecure-path names that directory.
  if (unsafeAncestors(path).length > 0) return null;
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    const errno = errnoOf(e);
    return errno === 'ENOENT' || errno === 'ENOTDIR' ? { what: 'no such directory', init: true } : null;
  }
  if (st.isSymbolicLink()) return null;
  if (!st.isDirectory()) return { what: 'not a directory', init: false };
  let names: string[];
  try {
    names = readdirSync(path);
  } catch {
    return null;
  }
  if (names.length === 0) return { what: 'an empty directory', init: true };
  // Any name of the vault's own (vault.json, releases/, current, ...): a vault, or one that lost its vault.json (a tamper).
  if (names.some((n) => VAULT_NAMES.has(n))) return null;
  return { what: 'a directory without vault.json', init: false };
}

// Why: the one line an operator acts on: where the daemon looked, and the command that creates the vault there.
export function assertVaultPresent(config: DaemonConfig): void {
  const path = config.vault.path;
  const found = absence(path);
  if (found === null) return;
  if (!found.init) throw new SentinelError('not-found', `not a vault (${found.what}): correct vault.path`, { where: `vault.path: ${path}` });
  const threshold = config.vault.threshold > 1 ? ` --threshold ${String(config.vault.threshold)}` : '';
  const init = `sentinel vault init ${path} --trust ${config.vault.trust.join(' ')}${threshold}`;
  throw new SentinelError('not-found', `no vault at vault.path yet (${found.what}): create it with '${init}' (or correct vault.path), then start the daemon again`, { where: `vault.path: ${path}` });
}
