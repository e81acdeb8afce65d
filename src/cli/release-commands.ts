// `sign` and `sign-and-deploy`: the release path from a source tree to a sealed live release, either
// straight into a vault or through the daemon's control socket. `deploy` itself, and the pieces both
// deploying commands share, are in src/cli/deploy-command.ts.
import { lstat, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sendRequest } from '../adapters/control-client.js';
import { SentinelError } from '../core/errors.js';
import type { SecretKey } from '../core/keys.js';
import { readVaultInfo } from '../vault/index.js';
import { createBundle } from '../vault/sign.js';
import { parseDuration } from './args.js';
import { daemonError } from './daemon-reply.js';
import type { DaemonReply } from './daemon-reply.js';
import { deployLive, deployViaSocket, exactlyOneTarget, printDeploy, readableBundleFile } from './deploy-command.js';
import type { DeploySummary } from './deploy-command.js';
import { readSecretKeyFiles } from './key-files.js';
import { printJson, printLines } from './output.js';
import { withVault } from './vault-access.js';
import { makeTempDir } from './temp-dir.js';

/** A status reply is immediate. */
const STATUS_TIMEOUT_MS = 10_000;

/** What `sign` reports about the bundle it wrote. */
export interface SignedBundle { path: string; vaultId: string; version: number; releaseId: string; signers: string[]; files: number; bundleBytes: number; expires: string }

// Signs `src` for one vault and version into `out` (never overwriting it); the CLI's one call into vault/sign.
export async function signTree(src: string, opts: { keys: SecretKey[]; vaultId: string; version: number; expiresInMs: number; out: string; now?: Date }): Promise<SignedBundle> {
  if (await lstat(opts.out).then(() => true, () => false)) throw new SentinelError('exists', 'refusing to overwrite an existing bundle file', { where: opts.out });
  const created = opts.now ?? new Date();
  const expires = new Date(created.getTime() + opts.expiresInMs);
  const r = await createBundle(src, { keys: opts.keys, vaultId: opts.vaultId, version: opts.version, created, expires, out: opts.out });
  return { path: r.path, vaultId: r.vaultId, version: r.version, releaseId: r.releaseId, signers: r.signers, files: r.files, bundleBytes: r.bundleBytes, expires: expires.toISOString() };
}

// `sign`: the vault id comes from --vault-id or from the vault itself.
export async function runSign(src: string, opts: { key: string[]; vaultId?: string; vault?: string; version: number; expiresIn: string; out: string; json?: boolean }): Promise<void> {
  const expiresInMs = parseDuration(opts.expiresIn);
  if ((opts.vaultId === undefined) === (opts.vault === undefined)) throw new SentinelError('usage', 'give exactly one of --vault-id or --vault');
  const keys = await readSecretKeyFiles(opts.key);
  const vaultId = opts.vaultId ?? (await readVaultInfo(opts.vault ?? '')).vaultId;
  const b = await signTree(src, { keys, vaultId, version: opts.version, expiresInMs, out: opts.out });
  if (opts.json === true) printJson({ ok: true, ...b });
  else printLines(`signed version ${b.version} for vault ${b.vaultId} by ${b.signers.join(', ')}: ${b.path}`, `  release ${b.releaseId}, ${b.files} files, bundle ${b.bundleBytes} bytes, expires ${b.expires}`);
}

// Version for sign-and-deploy: the explicit one, or the vault's highest seen + 1.
function nextVersion(explicit: number | undefined, highest: number): number {
  return explicit ?? highest + 1;
}

// `sign-and-deploy`: sign into a private temporary file, deploy it, remove it.
export async function runSignAndDeploy(src: string, opts: { key: string[]; vault?: string; socket?: string; version?: number; expiresIn: string; json?: boolean }): Promise<void> {
  const target = exactlyOneTarget(opts);
  const expiresInMs = parseDuration(opts.expiresIn);
  const keys = await readSecretKeyFiles(opts.key);
  // The summary as soon as the release is live (the daemon answers then too), not after pruning.
  let printed = false;
  const report = (s: DeploySummary): void => {
    printed = true;
    printDeploy(s, opts.json === true);
  };
  const s = await signAndDeploy(src, { keys, target, version: opts.version, expiresInMs, onLive: report });
  if (!printed) report(s);
}

// Shared by the command and the demo: sign `src` for the target's vault and deploy it. `onLive`: straight
// into a vault, the summary once the release is live and durable, before the deploy's tail.
export async function signAndDeploy(src: string, opts: { keys: SecretKey[]; target: { vault: string } | { socket: string }; version?: number; expiresInMs: number; onLive?: (s: DeploySummary) => void }): Promise<DeploySummary> {
  const dir = await makeTempDir('sentinel-sign-');
  const out = join(dir, 'release.bundle');
  try {
    if ('vault' in opts.target) {
      return await withVault(opts.target.vault, async (v) => {
        const info = await readVaultInfo(v.path);
        await signTree(src, { keys: opts.keys, vaultId: v.vaultId, version: nextVersion(opts.version, info.highestVersion), expiresInMs: opts.expiresInMs, out });
        return await deployLive(v, out, undefined, (s) => opts.onLive?.(s));
      });
    }
    const status = (await sendRequest(opts.target.socket, { op: 'status' }, { timeoutMs: STATUS_TIMEOUT_MS })) as DaemonReply<{ vault?: { vaultId?: string; highestVersion?: number } }>;
    if (status.ok !== true) throw daemonError(status.error, opts.target.socket, 'daemon did not answer the status request');
    const vaultId = status.result?.vault?.vaultId;
    const highest = status.result?.vault?.highestVersion;
    if (vaultId === undefined || highest === undefined) throw new SentinelError('unavailable', 'daemon status did not name its vault id and highest version', { where: opts.target.socket });
    await signTree(src, { keys: opts.keys, vaultId, version: nextVersion(opts.version, highest), expiresInMs: opts.expiresInMs, out });
    return await deployViaSocket(opts.target.socket, await readableBundleFile(out, { inline: true }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
