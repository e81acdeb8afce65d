// `vault init|verify|status|heal|rollback|recover|manifest`: thin wrappers over src/vault that print
// a human report or one JSON document and map violations to exit code 1.
import { join } from 'node:path';
import { SentinelError, exitCodeFor } from '../core/errors.js';
import type { Manifest } from '../core/manifest.js';
import type { TrustPolicy } from '../core/trust.js';
import type { VerifyReport } from '../vault/types.js';
import { failureJson, printErrorLine } from './failure.js';
import { readTrustPolicy } from './key-files.js';
import { printJson, printLines, progressBar } from './output.js';
import { createVault, withVault } from './vault-access.js';
import { paint } from './style.js';
import { warnWithoutNative } from './native-warning.js';

// `vault init`: the trust policy is read and checked before anything is created.
export async function runVaultInit(path: string, opts: { trust: string[]; threshold?: number; vaultId?: string; json?: boolean }): Promise<void> {
  const policy = await readTrustPolicy(opts.trust, opts.threshold);
  const v = await createVault(path, { trust: policy.keys, threshold: policy.threshold, ...(opts.vaultId !== undefined ? { vaultId: opts.vaultId } : {}) });
  if (opts.json === true) printJson({ ok: true, path: v.path, vaultId: v.vaultId, threshold: policy.threshold, trust: policy.keys.map((k) => k.id) });
  else printLines(`vault ${v.vaultId} created and sealed at ${v.path}`, `trust: ${policy.keys.map((k) => k.id).join(', ')} (threshold ${policy.threshold} of ${policy.keys.length})`);
}

// `vault verify`: exit 0 intact, 1 violation; anything that stops the check is an error (exit 2 or 1).
export async function runVaultVerify(path: string, opts: { trust?: string[]; threshold?: number; liveOnly?: boolean; json?: boolean }): Promise<number> {
  const json = opts.json === true;
  const trust: TrustPolicy | undefined = opts.trust !== undefined ? await readTrustPolicy(opts.trust, opts.threshold) : undefined;
  if (trust === undefined && opts.threshold !== undefined) throw new SentinelError('usage', '--threshold needs --trust', { where: '--threshold' });
  warnWithoutNative('vault verify');
  const bar = progressBar('verifying', !json);
  const report = await withVault(
    path,
    async (v) => {
      try {
        // Without a bar, no progress is asked for: the inspection then sums no sizes and sets no timer.
        const onProgress = bar.shown ? (d: number, t: number) => bar.update(d, t) : undefined;
        return await v.verify({ ...(trust !== undefined ? { trust } : {}), scope: opts.liveOnly === true ? 'live' : 'all', ...(onProgress === undefined ? {} : { onProgress }) });
      } finally {
        bar.end();
      }
    },
    trust !== undefined ? { trust } : {},
  );
  if (report.ok) {
    if (json) printJson(report);
    else printLines(...describeVerify(path, report));
    return 0;
  }
  const first = report.problems.find((p) => exitCodeFor(p.code) === 1) ?? report.problems[0];
  const err = notDeployed(report)
    ? new SentinelError('not-found', report.problems[0]!.message, { where: join(path, report.problems[0]!.path) })
    : new SentinelError(first?.code ?? 'tampered', `vault verify found ${report.problems.length} problem(s)${first !== undefined ? `, first: ${first.message}` : ''}`, { where: first !== undefined ? join(path, first.path) : path });
  if (json) printJson({ ...report, error: failureJson(err).error });
  else printLines(...describeVerify(path, report));
  printErrorLine(err);
  return exitCodeFor(err.code);
}

/** A vault fresh from `vault init` and nothing else wrong: no release to verify (exit 2), no violation. */
function notDeployed(r: VerifyReport): boolean {
  return r.problems.length === 1 && r.problems[0]?.code === 'not-found' && r.problems[0].path === 'current';
}

function describeVerify(path: string, r: VerifyReport): string[] {
  const c = paint();
  if (notDeployed(r)) return [`${c.yellow('-')} vault ${path}: no release deployed yet, nothing to verify (its own files and seals are in order); deploy a signed release first`];
  const head = r.ok ? `${c.green('✔')} vault ${path} is intact` : `${c.red('✘')} vault ${path} is ${c.red('NOT intact')}: ${r.problems.length} problem(s)`;
  const lines = [head];
  if (r.version !== null) lines.push(`  version ${r.version}, release ${r.releaseId ?? '?'}, signed by ${r.signers.join(', ') || '(no trusted signer)'}; trust from ${r.trustSource === 'override' ? '--trust' : r.trustSource}`);
  // Signers are set only once the live release verified; before that its tree is not read.
  const notChecked = r.version === null ? '  no live release read: no tree checked' : '  live tree not checked: its release did not verify (below)';
  lines.push(r.signers.length > 0 ? `  ${r.checkedFiles} files, ${r.checkedBytes} bytes hashed; +i checked on every file and directory` : notChecked);
  lines.push(r.kept === null ? '  live release only (kept releases and stored bundles not checked)' : `  also checked in full: ${r.kept.releases.length} other kept release(s), ${r.kept.bundles.length} stored bundle(s)`);
  for (const p of r.problems) lines.push(`  ${c.red('✘')} ${p.code}: ${p.message} (${p.path})`);
  return lines;
}

// `vault status` and its human form (the demo's too) live in status-command.ts, which its plain form bundles alone.
export { describeStatus, runVaultStatus } from './status-command.js';

// `vault heal`: the live release again from its stored signed bundle (verified first), without the daemon.
export async function runVaultHeal(path: string, opts: { trust?: string[]; threshold?: number; json?: boolean }): Promise<void> {
  const trust: TrustPolicy | undefined = opts.trust !== undefined ? await readTrustPolicy(opts.trust, opts.threshold) : undefined;
  if (trust === undefined && opts.threshold !== undefined) throw new SentinelError('usage', '--threshold needs --trust', { where: '--threshold' });
  const anchors = trust !== undefined ? { trust } : {};
  const r = await withVault(path, async (v) => v.heal(anchors), anchors);
  if (r.warning !== undefined) process.stderr.write(`sentinel: warning: healed, but ${r.warning}\n`);
  if (opts.json === true) printJson({ ok: true, ...r });
  else printLines(`healed version ${r.version} (release ${r.releaseId}) from its stored signed bundle; live tree sealed`);
}

// `vault rollback`: to the previous signed release kept in the vault.
export async function runVaultRollback(path: string, opts: { json?: boolean }): Promise<void> {
  const r = await withVault(path, async (v) => v.rollback());
  if (opts.json === true) printJson({ ok: true, ...r });
  else printLines(`rolled back to version ${r.version} (release ${r.releaseId}); live tree sealed`);
}

// `vault recover`: what an interrupted deploy left behind is finished or undone.
export async function runVaultRecover(path: string, opts: { json?: boolean }): Promise<void> {
  const r = await withVault(path, async (v) => v.recover());
  if (opts.json === true) printJson({ ok: true, ...r });
  else {
    const changed = r.removedStaging.length + r.removedReleases.length + r.removedBundles.length + r.resealed + (r.removedCurrentTmp ? 1 : 0) + (r.repointedTo !== null ? 1 : 0) + (r.highestRaised ? 1 : 0);
    if (changed === 0) printLines(`vault ${path}: nothing to recover; layout complete and sealed (highest version ${r.highestVersion})`);
    else printLines(`vault ${path}: recovered`, `  removed: ${r.removedStaging.length} staging, ${r.removedReleases.length} releases, ${r.removedBundles.length} bundles${r.removedCurrentTmp ? ', current.tmp' : ''}`, `  live pointer: ${r.repointedTo ?? 'unchanged'}; highest version ${r.highestVersion}${r.highestRaised ? ' (raised)' : ''}; ${r.resealed} paths re-sealed`);
  }
}

// The live manifest as `sha256sum -c` input (files only, paths relative to the live tree). Manifest
// paths never hold a backslash or a control character (core/manifest refuses them), so no line needs
// sha256sum's escaped form.
export function manifestAsSha256sum(m: Manifest): string {
  return m.entries.flatMap((e) => (e.type === 'file' ? [`${e.sha256}  ${e.path}\n`] : [])).join('');
}

// `vault manifest`: the signed manifest of the live release, for outside cross-checks.
export async function runVaultManifest(path: string, opts: { format: 'sha256sum' | 'json' }): Promise<void> {
  const live = await withVault(path, async (v) => v.liveManifest());
  if (opts.format === 'json') printJson(live.manifest);
  else process.stdout.write(manifestAsSha256sum(live.manifest));
}
