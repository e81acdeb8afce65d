// `sign`, `deploy`, `sign-and-deploy`: the release path from a source tree to a sealed live release,
// either straight into a vault or through the daemon's control socket.
import { lstat, mkdtemp, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { sendRequest } from '../adapters/control-client.js';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { openRegular } from '../adapters/bundle-file.js';
import type { SecretKey } from '../core/keys.js';
import { readVaultInfo } from '../vault/index.js';
import { createBundle } from '../vault/sign.js';
import type { DeployResult, Vault } from '../vault/index.js';
import type { TrustPolicy } from '../core/trust.js';
import { parseDuration } from './args.js';
import { daemonError } from './daemon-reply.js';
import type { DaemonReply } from './daemon-reply.js';
import { readSecretKeyFiles, readTrustPolicy } from './key-files.js';
import { printJson, printLines } from './output.js';
import { withVault } from './vault-access.js';
import { warnWithoutNative } from './native-warning.js';

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

function exactlyOneTarget(opts: { vault?: string; socket?: string }): { vault: string } | { socket: string } {
  if (opts.vault !== undefined && opts.socket !== undefined) throw new SentinelError('usage', 'give either --vault or --socket, not both');
  if (opts.vault !== undefined) return { vault: opts.vault };
  if (opts.socket !== undefined) return { socket: opts.socket };
  throw new SentinelError('usage', 'one of --vault or --socket is required');
}

/** Summary of a deploy, the same for the direct and the daemon path. */
export interface DeploySummary { version: number; releaseId: string; via: 'vault' | 'socket'; detail: unknown }

function summarise(r: DeployResult, via: 'vault' | 'socket'): DeploySummary {
  if (r.warning !== undefined) process.stderr.write(`sentinel: warning: deployed, but ${r.warning}\n`);
  return { version: r.version, releaseId: r.releaseId, via, detail: r };
}

/** A deploy of a large bundle hashes every byte; a status reply is immediate. */
const DEPLOY_TIMEOUT_MS = 10 * 60_000;
const STATUS_TIMEOUT_MS = 10_000;

/** Bundles up to this size travel inside the request (the daemon may run with PrivateTmp and not see our files). */
const INLINE_BUNDLE_MAX_BYTES = 32 * 1024 * 1024;

/** A bundle file checked readable; `inline`: its bytes, read through the checked descriptor, when asked for and small enough to travel in a request. */
interface BundleFile { abs: string; size: number; inline: Buffer | null }

// Why: a bundle file that is missing, not a regular file or unreadable is the same one line naming its
// absolute path, whichever way it is deployed, before the vault or the daemon is touched. It is opened
// as the vault opens it (adapters/bundle-file.ts: named with O_PATH, checked to be a regular file, then
// opened through that descriptor), never by path after a check: a device or fifo swapped in is not opened.
async function readableBundleFile(bundle: string, opts: { inline: boolean }): Promise<BundleFile> {
  const abs = resolve(bundle);
  let fh: FileHandle;
  try {
    fh = await openRegular(abs, false);
  } catch (e) {
    if (isSentinelError(e, 'usage')) throw e;
    const cause = e instanceof Error && e.cause !== undefined ? e.cause : e;
    if (errnoOf(cause) === 'ENOENT' || errnoOf(cause) === 'ENOTDIR') throw new SentinelError('not-found', 'bundle file not found', { where: abs, cause });
    throw ioError(cause, 'cannot read the bundle file', abs);
  }
  try {
    const size = (await fh.stat()).size;
    return { abs, size, inline: opts.inline && size <= INLINE_BUNDLE_MAX_BYTES ? await fh.readFile() : null };
  } catch (e) {
    throw ioError(e, 'cannot read the bundle file', abs);
  } finally {
    await fh.close();
  }
}

// Deploys through the daemon: the bundle inline when small, else its absolute path (which the daemon must be able to read).
async function deployViaSocket(socket: string, bundle: BundleFile): Promise<DeploySummary> {
  const { abs, inline } = bundle;
  const request = inline !== null ? { op: 'deploy', bundleBase64: inline.toString('base64') } : { op: 'deploy', bundlePath: abs };
  const reply = (await sendRequest(socket, request, { timeoutMs: DEPLOY_TIMEOUT_MS })) as DaemonReply<Partial<DeployResult>>;
  if (reply.ok !== true) throw daemonError(reply.error, socket, 'daemon refused the deploy');
  // Live, but its audit record is held in the daemon until the audit log takes writes again (docs/DAEMON.md#audit-log).
  if ((reply.result as { audited?: boolean } | undefined)?.audited === false) process.stderr.write(`sentinel: warning: deployed, but the daemon's audit log cannot be written now; its record is held (sentinel status --socket ${socket})\n`);
  if (typeof reply.result?.warning === 'string') process.stderr.write(`sentinel: warning: deployed, but ${reply.result.warning}\n`);
  return { version: reply.result?.version ?? 0, releaseId: reply.result?.releaseId ?? '', via: 'socket', detail: reply.result };
}

function printDeploy(s: DeploySummary, json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) printJson({ ok: true, ...extra, version: s.version, releaseId: s.releaseId, via: s.via });
  else printLines(`deployed version ${s.version} (release ${s.releaseId}) via ${s.via}; live tree sealed`);
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

// `deploy`: a bundle file into a vault, or handed to the daemon.
export async function runDeploy(bundle: string, opts: { vault?: string; socket?: string; trust?: string[]; threshold?: number; json?: boolean }): Promise<void> {
  const target = exactlyOneTarget(opts);
  if (opts.trust === undefined && opts.threshold !== undefined) throw new SentinelError('usage', '--threshold needs --trust', { where: '--threshold' });
  // Through the daemon its own configured anchors apply; --trust is for a deploy straight into a vault.
  if (opts.trust !== undefined && !('vault' in target)) throw new SentinelError('usage', '--trust needs --vault (the daemon uses its configured vault.trust)', { where: '--trust' });
  const file = await readableBundleFile(bundle, { inline: !('vault' in target) });
  const trust = opts.trust === undefined ? undefined : await readTrustPolicy(opts.trust, opts.threshold);
  try {
    if ('vault' in target) await withVault(target.vault, (v) => deployReporting(v, file.abs, trust, opts.json === true), trust === undefined ? {} : { trust });
    else printDeploy(await deployViaSocket(target.socket, file), opts.json === true);
  } catch (e) {
    throw inBundle(e, file.abs, 'vault' in target ? target.vault : target.socket);
  }
}

// Why: a refusal of what is inside the bundle names a place in it (`signatures`, `bundle head`, a
// manifest path, the release id) and no file; the one line then names the bundle file before it.
// A place on disk (the vault, the socket, the bundle itself: an absolute path, or the target as given) stays as it is.
function inBundle(e: unknown, file: string, target: string): unknown {
  if (!isSentinelError(e) || (e.where !== undefined && (isAbsolute(e.where) || e.where === target))) return e;
  return new SentinelError(e.code, e.message, { where: e.where === undefined ? file : `${file}: ${e.where}`, cause: e });
}

// Straight into a vault: `report` gets the summary as soon as the new release is live and on stable
// storage (onLive); the deploy then finishes its tail (highest.json, pruning, under the vault lock:
// docs/VAULT.md#deploy) and this resolves after it, with a warning line if the tail failed.
async function deployLive(v: Vault, bundle: string, trust: TrustPolicy | undefined, report: (s: DeploySummary) => void): Promise<DeploySummary> {
  warnWithoutNative('deploy');
  const seen: { live?: DeployResult } = {};
  const onLive = (r: DeployResult): void => {
    seen.live = r;
    report(summarise(r, 'vault'));
  };
  const final = await v.deploy(bundle, { ...(trust !== undefined ? { trust } : {}), onLive });
  if (seen.live === undefined) onLive(final);
  else if (final.warning !== undefined && final.warning !== seen.live.warning) process.stderr.write(`sentinel: warning: deployed, but ${final.warning}\n`);
  return { version: final.version, releaseId: final.releaseId, via: 'vault', detail: final };
}

async function deployReporting(v: Vault, bundle: string, trust: TrustPolicy | undefined, json: boolean): Promise<void> {
  await deployLive(v, bundle, trust, (s) => printDeploy(s, json));
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
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-sign-'));
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
