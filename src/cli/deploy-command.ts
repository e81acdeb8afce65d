// `deploy`: a bundle file into a vault, or handed to the daemon through its control socket; and the
// pieces `sign-and-deploy` shares (src/cli/release-commands.ts). Apart from signing, so the plain
// `deploy` runner (src/cli/plain-deploy.ts) loads only what a deploy uses; the control socket's
// client (node:net) is imported when a deploy goes through the daemon.
import { resolve, isAbsolute } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { SentinelError, isSentinelError } from '../core/errors.js';
import { errnoOf, ioError } from '../core/errno.js';
import { openRegular } from '../adapters/bundle-file.js';
import type { DeployResult, Vault } from '../vault/index.js';
import type { TrustPolicy } from '../core/trust.js';
import { daemonError } from './daemon-reply.js';
import type { DaemonReply } from './daemon-reply.js';
import { readTrustPolicy } from './key-files.js';
import { printJson, printLines } from './output.js';
import { withVault } from './vault-access.js';
import { warnWithoutNative } from './native-warning.js';

export function exactlyOneTarget(opts: { vault?: string; socket?: string }): { vault: string } | { socket: string } {
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

/** A deploy of a large bundle hashes every byte. */
const DEPLOY_TIMEOUT_MS = 10 * 60_000;

/** Bundles up to this size travel inside the request (the daemon may run with PrivateTmp and not see our files). */
const INLINE_BUNDLE_MAX_BYTES = 32 * 1024 * 1024;

/** A bundle file checked readable; `inline`: its bytes, read through the checked descriptor, when asked for and small enough to travel in a request. */
export interface BundleFile { abs: string; size: number; inline: Buffer | null }

// Why: a bundle file that is missing, not a regular file or unreadable is the same one line naming its
// absolute path, whichever way it is deployed, before the vault or the daemon is touched. It is opened
// as the vault opens it (adapters/bundle-file.ts: named with O_PATH, checked to be a regular file, then
// opened through that descriptor), never by path after a check: a device or fifo swapped in is not opened.
export async function readableBundleFile(bundle: string, opts: { inline: boolean }): Promise<BundleFile> {
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
export async function deployViaSocket(socket: string, bundle: BundleFile): Promise<DeploySummary> {
  const { abs, inline } = bundle;
  const request = inline !== null ? { op: 'deploy', bundleBase64: inline.toString('base64') } : { op: 'deploy', bundlePath: abs };
  const { sendRequest } = await import('../adapters/control-client.js');
  const reply = (await sendRequest(socket, request, { timeoutMs: DEPLOY_TIMEOUT_MS })) as DaemonReply<Partial<DeployResult>>;
  if (reply.ok !== true) throw daemonError(reply.error, socket, 'daemon refused the deploy');
  // Live, but its audit record is held in the daemon until the audit log takes writes again (docs/DAEMON.md#audit-log).
  if ((reply.result as { audited?: boolean } | undefined)?.audited === false) process.stderr.write(`sentinel: warning: deployed, but the daemon's audit log cannot be written now; its record is held (sentinel status --socket ${socket})\n`);
  if (typeof reply.result?.warning === 'string') process.stderr.write(`sentinel: warning: deployed, but ${reply.result.warning}\n`);
  return { version: reply.result?.version ?? 0, releaseId: reply.result?.releaseId ?? '', via: 'socket', detail: reply.result };
}

export function printDeploy(s: DeploySummary, json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) printJson({ ok: true, ...extra, version: s.version, releaseId: s.releaseId, via: s.via });
  else printLines(`deployed version ${s.version} (release ${s.releaseId}) via ${s.via}; live tree sealed`);
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
export async function deployLive(v: Vault, bundle: string, trust: TrustPolicy | undefined, report: (s: DeploySummary) => void): Promise<DeploySummary> {
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
