// Deploy benchmark: the live-unsealed window of a deploy (first unseal of
// VAULT/ to its re-seal, from the vault's own events) for bundles of 1 MB, 100 MB and 1 GB, its
// 1 GB / 1 MB ratio, and the whole deploy time against the shell equivalent on the same content
// (`tar -x`, `sha256sum -c`, `chattr -R +i`), measured in the same run on warm caches.
// Usage: node dist/bench/deploy-bench.js [BASE_DIR] [--json] [--quick] [--sizes 1MB,100MB,1GB] [--disk-load]
// "pairs": each copy deploy against the shell run of the same round, the median of those ratios.
// A deploy is timed to its result (onLive: live and durable); "with its tail" to when it resolves
// (the lock is free again), and against the shell line both ways; "deletion" is the tail's removal
// of the pruned release (its `pruning` to `pruned` steps); the tail's other parts are timed from its
// steps too: highest.json raised (the result to `highest-updated`), the prune's moves with the flush
// of releases/ and state/ (`highest-updated` to `pruning`), and what follows the deletion (`pruned` to
// the end: the held directories closed, the lock released). --disk-load runs a parallel writer on the
// same filesystem (bench/lib/disk-load.ts) for the whole run.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { keyPairFromSeed } from '../src/core/keys.js';
import { defaultFlagStore } from '../src/adapters/flags.js';
import { HashPool } from '../src/adapters/hash.js';
import { initVault } from '../src/vault/index.js';
import type { VaultEvent } from '../src/vault/index.js';
import { createBundle } from '../src/vault/sign.js';
import { startDiskLoad } from './lib/disk-load.js';

const MB = 1000 * 1000;
const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const diskLoad = args.includes('--disk-load');
const sizesArg = args.indexOf('--sizes') >= 0 ? args[args.indexOf('--sizes') + 1] : undefined;
const base = mkdtempSync(join(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--sizes') ?? '/tmp', 'sentinel-deploy-bench-'));

interface Size {
  label: string;
  bytes: number;
  files: number;
  reps: number;
}
const ALL_SIZES: Size[] = quick
  ? [
      { label: '1 MB', bytes: 1 * MB, files: 20, reps: 8 },
      { label: '100 MB', bytes: 100 * MB, files: 20, reps: 2 },
    ]
  : [
      // A 1 MB deploy and its shell peer take tens of milliseconds, where one stray flush of another
      // writer moves a median of five: more pairs there, each cheap.
      { label: '1 MB', bytes: 1 * MB, files: 20, reps: 15 },
      { label: '100 MB', bytes: 100 * MB, files: 20, reps: 3 },
      { label: '1 GB', bytes: 1000 * MB, files: 20, reps: 2 },
    ];

const SIZES = sizesArg === undefined ? ALL_SIZES : ALL_SIZES.filter((s) => sizesArg.split(',').includes(s.label.replace(' ', '')));
if (SIZES.length === 0) throw new Error(`--sizes ${sizesArg}: none of ${ALL_SIZES.map((s) => s.label.replace(' ', '')).join(', ')}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function sh(cmd: string, argv: string[], cwd?: string): void {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
}

function removeSealed(path: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', path]);
  rmSync(path, { recursive: true, force: true });
}

/** A release tree of `files` files of random bytes adding up to `bytes`. */
function makeTree(root: string, size: Size): void {
  mkdirSync(join(root, 'data'), { recursive: true });
  const per = Math.floor(size.bytes / size.files);
  for (let i = 0; i < size.files; i++) writeFileSync(join(root, 'data', `part-${String(i).padStart(3, '0')}.bin`), randomBytes(per));
  writeFileSync(join(root, 'VERSION'), `${size.label}\n`);
}

interface Row {
  size: string;
  reps: number;
  windowMedianMs: number;
  windowMaxMs: number;
  /** Longest unseal of releases/, bundles/ or state/ (each one rename and one seal). */
  otherWindowMaxMs: number;
  /** Deploy as `sentinel deploy` does it (the bundle is copied into the vault), to its result (`onLive`: live and durable). */
  deployMedianS: number;
  /** The same deploys to the end of their tail (highest.json, pruning), when `Vault.deploy` resolves. */
  deployWholeMedianS: number;
  /** shell / copy with its tail (medians), and the median of the same ratio per round. */
  wholeVsShell: number;
  wholePairRatioMedian: number;
  /** The tail's deletion of the pruned release (`pruning` to `pruned`), every deploy that pruned: median and max. */
  deletionMedianMs: number;
  deletionMaxMs: number;
  /** The tail's raise of highest.json (the result to `highest-updated`) and the prune's moves and flush (`highest-updated` to `pruning`): medians. */
  highestMedianMs: number;
  pruneFlushMedianMs: number;
  /** From `pruned` to when `Vault.deploy` resolves (the held directories closed, the lock released): median. */
  afterPrunedMedianMs: number;
  /** Deploy with `consume` (the daemon's inbox case): the bundle is moved into the vault. */
  deployConsumeMedianS: number;
  shellMedianS: number;
  shellSyncMedianS: number;
  /** `vault verify` of the live release right after the deploy (hashes, tree, flags, signature). */
  verifyMedianS: number;
  deployVsShell: number;
  /** Median over the copy deploys of shell / deploy of the same round (each deploy against the shell run right after it). */
  pairRatioMedian: number;
}

async function benchSize(size: Size): Promise<Row> {
  const dir = join(base, size.label.replace(' ', ''));
  mkdirSync(dir);
  const src = join(dir, 'src');
  makeTree(src, size);
  const key = keyPairFromSeed(new Uint8Array(randomBytes(32)), 'bench');
  const hash = new HashPool();
  const events: VaultEvent[] = [];
  const vaultPath = join(dir, 'vault');
  const deletions: number[] = [];
  const highests: number[] = [];
  const pruneFlushes: number[] = [];
  const afterPruned: number[] = [];
  let prunedAt = Number.NaN;
  let liveAt = Number.NaN;
  let highestAt = Number.NaN;
  let pruningAt = Number.NaN;
  const hook = (step: string): Promise<void> => {
    if (step === 'highest-updated') {
      highestAt = performance.now();
      if (!Number.isNaN(liveAt)) highests.push(highestAt - liveAt);
    }
    if (step === 'pruning') {
      pruningAt = performance.now();
      if (!Number.isNaN(highestAt)) pruneFlushes.push(pruningAt - highestAt);
    }
    if (step === 'pruned') prunedAt = performance.now();
    if (step === 'pruned' && !Number.isNaN(pruningAt)) deletions.push(prunedAt - pruningAt);
    return Promise.resolve();
  };
  const deps = { flags: defaultFlagStore(), hash, now: () => new Date(), onEvent: (e: VaultEvent) => events.push(e), hook, keepReleases: 2 };
  const vault = await initVault(vaultPath, { trust: [key.public], threshold: 1, vaultId: 'bench' }, deps);

  // The shell peer's inputs, prepared untimed: a tar of the same tree and its sha256sum list.
  sh('tar', ['-cf', join(dir, 'tree.tar'), '-C', src, '.']);
  const sums = spawnSync('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 sha256sum'], { cwd: src, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  writeFileSync(join(dir, 'SHA256SUMS'), sums.stdout);

  const windows: number[] = [];
  const others: number[] = [];
  const deploys: number[] = [];
  const wholes: number[] = [];
  const consumes: number[] = [];
  const shells: number[] = [];
  const shellSyncs: number[] = [];
  const verifies: number[] = [];
  const pairs: number[] = [];
  const wholePairs: number[] = [];
  for (let rep = 1; rep <= 2 * size.reps; rep++) {
    const consume = rep % 2 === 0;
    const now = new Date();
    const bundle = join(dir, `v${rep}.bundle`);
    await createBundle(src, { keys: [key.secret], vaultId: 'bench', version: rep, created: now, expires: new Date(now.getTime() + 3600_000), out: bundle });
    // Untimed: the freshly written bundle is flushed first, so the deploy's own `sync -f` does not
    // pay for it and the deploy and shell runs both start with no dirty data on the filesystem.
    sh('sync', ['-f', dir]);
    events.length = 0;
    pruningAt = Number.NaN;
    highestAt = Number.NaN;
    prunedAt = Number.NaN;
    liveAt = Number.NaN;
    const t0 = performance.now();
    const r = await vault.deploy(bundle, { consume, onLive: () => (liveAt = performance.now()) });
    const doneAt = performance.now();
    if (!consume) wholes.push((doneAt - t0) / 1000);
    if (!Number.isNaN(prunedAt)) afterPruned.push(doneAt - prunedAt);
    (consume ? consumes : deploys).push((liveAt - t0) / 1000);
    // The live window from the events: the unseal of VAULT/ itself to its re-seal.
    const open = events.find((e) => e.kind === 'unseal' && e.path === vaultPath);
    const close = events.find((e) => e.kind === 'seal' && e.path === vaultPath && open !== undefined && e.at >= open.at);
    if (open === undefined || close === undefined) throw new Error('no live window events seen');
    windows.push(close.at - open.at);
    for (const d of ['releases', 'bundles', 'state'].map((n) => join(vaultPath, n))) {
      const u = events.find((e) => e.kind === 'unseal' && e.path === d);
      const sl = events.find((e) => e.kind === 'seal' && e.path === d && u !== undefined && e.at >= u.at);
      if (u !== undefined && sl !== undefined) others.push(sl.at - u.at);
    }
    if (Math.abs(close.at - open.at - r.liveWindowMs) > 5) throw new Error(`event window ${close.at - open.at} and result window ${r.liveWindowMs} disagree`);
    rmSync(bundle, { force: true });
    const v0 = performance.now();
    const report = await vault.verify();
    verifies.push((performance.now() - v0) / 1000);
    if (!report.ok) throw new Error(`verify failed after deploy: ${JSON.stringify(report.problems.slice(0, 3))}`);

    const dest = join(dir, `shell-${rep}`);
    sh('sync', ['-f', dir]);
    const s0 = performance.now();
    mkdirSync(dest);
    sh('tar', ['-xf', join(dir, 'tree.tar'), '-C', dest]);
    sh('sha256sum', ['-c', '--quiet', join(dir, 'SHA256SUMS')], dest);
    sh('chattr', ['-R', '+i', dest]);
    if (consume) sh('sync', ['-f', dest]);
    (consume ? shellSyncs : shells).push((performance.now() - s0) / 1000);
    if (!consume) pairs.push(shells[shells.length - 1]! / deploys[deploys.length - 1]!);
    if (!consume) wholePairs.push(shells[shells.length - 1]! / wholes[wholes.length - 1]!);
    removeSealed(dest);
  }
  await hash.close();
  removeSealed(dir);
  const dm = median(deploys);
  const smed = median(shells);
  return {
    size: size.label,
    reps: size.reps,
    windowMedianMs: median(windows),
    windowMaxMs: Math.max(...windows),
    otherWindowMaxMs: Math.max(...others),
    deployMedianS: dm,
    deployWholeMedianS: median(wholes),
    wholeVsShell: smed / median(wholes),
    wholePairRatioMedian: median(wholePairs),
    deletionMedianMs: deletions.length > 0 ? median(deletions) : Number.NaN,
    deletionMaxMs: deletions.length > 0 ? Math.max(...deletions) : Number.NaN,
    highestMedianMs: highests.length > 0 ? median(highests) : Number.NaN,
    pruneFlushMedianMs: pruneFlushes.length > 0 ? median(pruneFlushes) : Number.NaN,
    afterPrunedMedianMs: afterPruned.length > 0 ? median(afterPruned) : Number.NaN,
    deployConsumeMedianS: median(consumes),
    shellMedianS: smed,
    shellSyncMedianS: median(shellSyncs),
    verifyMedianS: median(verifies),
    deployVsShell: smed / dm,
    pairRatioMedian: median(pairs),
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const loadBefore = loadavg()[0]!;
  const load = diskLoad ? startDiskLoad(base) : null;
  try {
    for (const s of SIZES) rows.push(await benchSize(s));
  } finally {
    await load?.stop();
    removeSealed(base);
  }
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const ratio = last.windowMedianMs / first.windowMedianMs;
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}, flags via ${defaultFlagStore().kind}; ${load === null ? 'no disk load of its own' : load.what}; load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after`;
  if (json) {
    console.log(JSON.stringify({ machine, rows, windowRatio: { of: `${last.size} / ${first.size}`, value: ratio } }, null, 2));
    return;
  }
  console.log(`deploy bench — ${machine}`);
  console.log(
    '| bundle | deploys | live window median (ms) | max (ms) | releases/bundles/state windows max (ms) | deploy, copy (s) | copy with its tail (s) | tail: highest.json raised / moves out and flush of the prune / after the deletion (ms, medians) | deletion of the pruned release, median / max (ms) | deploy, consume (s) | shell tar+sha256sum+chattr (s) | shell + sync -f (s) | shell / deploy | pairs: median shell / deploy | shell / deploy with its tail | pairs, with its tail | vault verify (s) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.size} | ${2 * r.reps} | ${r.windowMedianMs.toFixed(3)} | ${r.windowMaxMs.toFixed(3)} | ${r.otherWindowMaxMs.toFixed(3)} | ${r.deployMedianS.toFixed(3)} | ${r.deployWholeMedianS.toFixed(3)} | ${r.highestMedianMs.toFixed(1)} / ${r.pruneFlushMedianMs.toFixed(1)} / ${r.afterPrunedMedianMs.toFixed(1)} | ${r.deletionMedianMs.toFixed(1)} / ${r.deletionMaxMs.toFixed(1)} | ${r.deployConsumeMedianS.toFixed(3)} | ${r.shellMedianS.toFixed(3)} | ${r.shellSyncMedianS.toFixed(3)} | ${r.deployVsShell.toFixed(2)}x | ${r.pairRatioMedian.toFixed(2)}x | ${r.wholeVsShell.toFixed(2)}x | ${r.wholePairRatioMedian.toFixed(2)}x | ${r.verifyMedianS.toFixed(3)} |`,
    );
  }
  console.log('deploy = verify head + stage with hash checks + keep the bundle + syncfs + seal + swap and its fsync, to the result (onLive); its tail (highest.json, pruning) follows under the lock, "with its tail" to the end of it; every deploy also syncs, the plain shell line does not; the filesystem is flushed (untimed) before each deploy and each shell run.');
  console.log(`live window ratio ${last.size} / ${first.size}: ${ratio.toFixed(2)} (target <= 1.5; median target <= 2 ms)`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
