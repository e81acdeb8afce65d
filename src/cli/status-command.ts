// `sentinel vault status`: what is live and whether it is sealed. The vault is opened as every
// command opens it (src/vault/open.ts: its checks and the removal of leftovers) without the
// Vault object's other operations, so the plain form's bundle (`status.cjs`, src/cli/plain-status.ts)
// holds no deploy and no verify code (docs/ARCHITECTURE.md#start-up).
import { SentinelError } from '../core/errors.js';
import { defaultFlagStore } from '../adapters/flags.js';
import { openVaultContext } from '../vault/open.js';
import { vaultStatus } from '../vault/status.js';
import { INTERRUPTED } from '../vault/lock.js';
import type { VaultDeps, VaultStatus } from '../vault/types.js';
import { printJson, printLines } from './output.js';

// A live release that did not check out (signatures, release id, vault id), a path it finds unsealed or
// an operation left interrupted (its crash marker) exits 1 with `ok: false`, as `vault verify` would refuse each.
export async function runVaultStatus(path: string, opts: { json?: boolean }): Promise<void> {
  // The flags store and the clock every command's vault gets (src/cli/vault-access.ts). No hash
  // pool: status hashes no file, nor does the recovery an open may run (only verify reads trees),
  // so its bundle holds none of the pool's code; a use would be a bug, one line, exit 2.
  const deps: VaultDeps = {
    flags: defaultFlagStore(),
    get hash(): never {
      throw new SentinelError('internal', 'vault status hashes no file');
    },
    now: () => new Date(),
  };
  const st = await vaultStatus(await openVaultContext(path, deps));
  const ok = st.liveProblem === null && st.sealed && !st.interrupted;
  if (!ok) process.exitCode = 1;
  if (opts.json === true) {
    printJson({ ok, ...st });
    return;
  }
  printLines(...describeStatus(st));
}

// The human form of `vault status`, also used by the demo. It says what status did not check.
export function describeStatus(st: VaultStatus): string[] {
  const dir = st.releaseDir !== null && st.releaseDir !== st.releaseId ? ` (directory ${st.releaseDir})` : '';
  const live = st.version === null ? (st.liveProblem === null ? 'no release deployed' : 'unreadable') : `version ${st.version}, release ${st.releaseId ?? '?'}${dir}`;
  return [
    `vault ${st.vaultId} at ${st.path}`,
    `  live: ${live}${st.liveProblem === null ? '' : `; NOT VERIFIED: ${st.liveProblem}`}`,
    `  signers: ${st.signers.join(', ') || '-'}; trust: ${st.trustedKeys.join(', ')} (threshold ${st.threshold})`,
    `  sealed: ${st.sealed ? 'yes' : `NO (${st.unsealedPaths.join(', ')})`}`,
    ...(st.interrupted ? [`  interrupted: ${INTERRUPTED}`] : []),
    `  last deployed: ${st.deployedAt ?? 'never'}; highest version seen: ${st.highestVersion}`,
    `  kept releases: ${st.releases.map((r) => `v${r.version}${r.live ? ' (live)' : ''}`).join(', ') || '-'}`,
    `  not checked here: ${st.notChecked.join(', ')} (sentinel vault verify checks them)`,
  ];
}
