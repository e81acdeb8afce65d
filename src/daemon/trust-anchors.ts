// The trust anchors of the running daemon, read from the configured key files at start and on SIGHUP
// (from outside the vault: docs/VAULT.md#invariants 6).
import { SentinelError, messageOf } from '../core/errors.js';
import { parsePublicKey } from '../core/keys.js';
import { assertTrustPolicy, type TrustPolicy } from '../core/trust.js';
import { MAX_KEY_FILE_BYTES } from '../adapters/small-file.js';
import type { DaemonConfig } from './config.js';
import { readOwnedConfigFile } from './config-file-safety.js';

// Why: a missing or bad key file, or a threshold the keys cannot meet, fails start (or the reload) naming the setting.
export async function loadTrust(config: DaemonConfig): Promise<TrustPolicy> {
  const keys = [];
  for (const [i, file] of config.vault.trust.entries()) {
    const where = `vault.trust[${String(i)}]: ${file}`;
    const text = await readOwnedConfigFile(file, { what: 'trusted public key', setting: `vault.trust[${String(i)}]: trusted public key`, maxBytes: MAX_KEY_FILE_BYTES, badFileCode: 'config', where });
    try {
      keys.push(parsePublicKey(text, file));
    } catch (e) {
      throw new SentinelError('config', messageOf(e), { where, cause: e });
    }
  }
  const policy = { keys, threshold: config.vault.threshold };
  try {
    assertTrustPolicy(policy);
  } catch (e) {
    throw new SentinelError('config', `bad trust policy: ${messageOf(e)}`, { where: 'vault.trust / vault.threshold', cause: e });
  }
  return policy;
}
