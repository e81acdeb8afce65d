// Benchmark of `vault verify` (the real Vault.verify of a vault with the tree deployed, progress
// callback included as the CLI passes one) and of the work it does (SHA-256 of every file + the
// inode flags of every entry) against sha256sum, two openssl processes and AIDE on the same warm
// trees, in the same run
// (targets: >= 0.85x the openssl pair on large files, >= 0.75x on small files).
// Usage: node dist/bench/hash-bench.js [BASE_DIR] [--json] [--small-only]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { areImmutable, chattrFlagStore, defaultFlagStore, sealTree, unsealTree } from '../src/adapters/flags.js';
import type { FlagStore } from '../src/adapters/flags.js';
import { HashPool } from '../src/adapters/hash.js';
import { scanTree } from '../src/adapters/tree.js';
import { formatTable, interleavedMedians, machineLine, runQuiet, seconds, split } from './lib/hash-bench-util.js';
import { buildLarge, buildSmall, chunk, warm } from './lib/trees.js';
import type { Tree } from './lib/trees.js';
import { deployTree } from './lib/vault-tree.js';
import type { DeployedVault } from './lib/vault-tree.js';

const RUNS = 5;

interface Row {
  tree: string;
  tool: string;
  seconds: number;
  mbPerSec: number;
  filesPerSec: number;
  vsOpenssl?: number;
}

function readFlags(store: FlagStore, tree: Tree): Promise<boolean[]> {
  return areImmutable(store, [...tree.dirs, ...tree.files]);
}

// What `vault verify` does per release: hash every file on the pool while reading every flag.
async function verifyWork(pool: HashPool, store: FlagStore, tree: Tree, scan: boolean): Promise<void> {
  if (scan) await scanTree(tree.root, { checkReadable: false });
  const hashing = pool.hashFiles(tree.files, undefined, { sizes: tree.sizes });
  const flags = await readFlags(store, tree);
  const results = await hashing;
  if (results.length !== tree.files.length || flags.length !== tree.files.length + tree.dirs.length) throw new Error('incomplete verify work');
}

async function aideCheck(work: string, tree: Tree): Promise<{ init: number; check: number }> {
  const conf = join(work, `aide-${tree.files.length}.conf`);
  const db = join(work, `aide-${tree.files.length}.db`);
  writeFileSync(conf, [
    `database_in=file:${db}`, `database_out=file:${db}.new`, 'database_add_metadata=no', 'gzip_dbout=no',
    `num_workers=${availableParallelism()}`, 'report_url=stdout', 'log_level=warning', 'S = sha256', `${tree.root} S`, '',
  ].join('\n'));
  const init = await seconds(() => runQuiet('aide', [`--config=${conf}`, '--init']));
  rmSync(db, { force: true });
  writeFileSync(db, readFileSync(`${db}.new`));
  const check = await seconds(() => runQuiet('aide', [`--config=${conf}`, '--check']));
  return { init, check };
}

// `sentinel vault verify` as the CLI runs it (with a progress callback); fails the bench if not ok.
async function vaultVerify(dv: DeployedVault): Promise<void> {
  let last = 0;
  const report = await dv.vault.verify({ onProgress: (done) => (last = done) });
  if (!report.ok || last !== report.checkedBytes) throw new Error(`vault verify: ${JSON.stringify(report.problems.slice(0, 3))}`);
}

async function measure(work: string, tree: Tree, store: FlagStore): Promise<Row[]> {
  const rows: Row[] = [];
  const add = (tool: string, s: number, peer?: number): void => {
    rows.push({ tree: tree.name, tool, seconds: s, mbPerSec: tree.bytes / 1e6 / s, filesPerSec: tree.files.length / s, ...(peer === undefined ? {} : { vsOpenssl: peer / s }) });
  };
  const rel = tree.files.map((f) => relative(tree.root, f));
  const halves = split(rel, 2);

  const warmPool = new HashPool();
  await warmPool.warmUp();
  // The same tree deployed into a vault: the real command's figure, against openssl on the vault's own copy.
  const vaultDir = join(work, `vault-${tree.files.length}`);
  mkdirSync(vaultDir);
  const dv = await deployTree(vaultDir, tree.root, warmPool);
  const [vaultS, vaultOpenssl] = await interleavedMedians(RUNS + 2, [
    () => vaultVerify(dv),
    () => Promise.all(halves.map((h) => runQuiet('openssl', ['dgst', '-sha256', ...h], { cwd: dv.tree }))),
  ]);
  add('sentinel vault verify (Vault.verify)', vaultS!, vaultOpenssl);
  add('openssl dgst -sha256 x2 (vault tree)', vaultOpenssl!, vaultOpenssl);
  spawnSync('chattr', ['-R', '-f', '-i', vaultDir]);
  rmSync(vaultDir, { recursive: true, force: true });
  const [warmS, scanS, startS, openssl] = await interleavedMedians(RUNS, [
    () => verifyWork(warmPool, store, tree, false),
    () => verifyWork(warmPool, store, tree, true),
    async () => {
      const pool = new HashPool();
      try {
        await verifyWork(pool, store, tree, false);
      } finally {
        await pool.close();
      }
    },
    () => Promise.all(halves.map((h) => runQuiet('openssl', ['dgst', '-sha256', ...h], { cwd: tree.root }))),
  ]);
  await warmPool.close();
  add(`sentinel HashPool(${warmPool.size}) + flags`, warmS!);
  add('sentinel scan + hash + flags', scanS!);
  add('sentinel incl. pool start', startS!);
  add('openssl dgst -sha256 x2', openssl!);
  add('sha256sum x1', await seconds(() => Promise.all(chunk(rel, 5000).map((c) => runQuiet('sha256sum', c, { cwd: tree.root })))));
  add('sha256sum (xargs -P2)', await seconds(() => Promise.all(halves.map((h) => runQuiet('sha256sum', h, { cwd: tree.root })))));
  const aide = await aideCheck(work, tree);
  add(`aide --check (sha256, ${availableParallelism()} workers)`, aide.check);

  for (const r of rows) r.vsOpenssl ??= openssl! / r.seconds;
  return rows;
}

interface SealRow {
  tool: string;
  seal: number;
  unseal: number;
}

// Sealing the 10,000-file tree: the flag stores' sealTree/unsealTree against `chattr -R`.
async function measureSeal(tree: Tree, store: FlagStore): Promise<SealRow[]> {
  const rows: SealRow[] = [];
  const stores = store.kind === 'ioctl' ? [store, chattrFlagStore()] : [store];
  for (const s of stores) {
    const seal = await seconds(() => sealTree(s, tree.root));
    const unseal = await seconds(() => unsealTree(s, tree.root));
    rows.push({ tool: `sealTree / unsealTree (${s.kind} store)`, seal, unseal });
  }
  const seal = await seconds(() => runQuiet('chattr', ['-R', '+i', tree.root]));
  const unseal = await seconds(() => runQuiet('chattr', ['-R', '-i', tree.root]));
  rows.push({ tool: 'chattr -R +i / -i (one process)', seal, unseal });
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const only = args.includes('--small-only') ? 'small' : 'all';
  const baseArg = args.find((a) => !a.startsWith('--'));
  const work = mkdtempSync(join(baseArg ?? tmpdir(), 'sentinel-hash-bench-'));
  const cleanup = (): void => {
    // A seal measurement that failed half-way would leave +i entries that rm cannot remove.
    spawnSync('chattr', ['-R', '-f', '-i', work]);
    rmSync(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const store = defaultFlagStore();
    const t0 = performance.now();
    const large = only === 'small' ? undefined : buildLarge(join(work, 'large'));
    const small = buildSmall(join(work, 'small'));
    await runQuiet('sync', []);
    if (large !== undefined) await warm(large.files);
    await warm(small.files);
    const built = (performance.now() - t0) / 1000;
    const rows = [...(large === undefined ? [] : await measure(work, large, store)), ...(await measure(work, small, store))];
    const sealRows = await measureSeal(small, store);
    if (json) {
      console.log(JSON.stringify({ machine: machineLine(), flagStore: store.kind, rows, seal: sealRows }, null, 2));
    } else {
      console.log(`hash-bench: ${machineLine()}; flag store: ${store.kind}; trees built and warmed in ${built.toFixed(1)} s`);
      console.log(formatTable(
        ['tree', 'tool', 'seconds', 'MB/s', 'files/s', 'x openssl pair'],
        rows.map((r) => [r.tree, r.tool, r.seconds.toFixed(3), r.mbPerSec.toFixed(0), r.filesPerSec.toFixed(0), (r.vsOpenssl ?? 0).toFixed(2)]),
        2,
      ));
      console.log(`\nsealing ${small.files.length + small.dirs.length} entries (${small.name})`);
      console.log(formatTable(['tool', 'seal s', 'unseal s'], sealRows.map((r) => [r.tool, r.seal.toFixed(3), r.unseal.toFixed(3)])));
      console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    cleanup();
  }
}

await main();
