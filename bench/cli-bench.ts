// Whole-process figures of the `sentinel` command line as a user meets it (one process from a shell,
// cron or a monitoring check: Node's start-up, module loading, parsing and exit included), each
// against a peer measured in the same run and taken in turns with it:
//   `vault verify` (10,000 × ~9 KB and 20 × 50 MiB) vs two `openssl dgst -sha256` processes over the same files,
//   `vault status` and `--help` vs `node -e 0`,
//   `deploy` of a 1 MB and a 100 MB bundle vs `tar -x` + `sha256sum -c` + `chattr -R +i` in one `sh`,
//   with `node -e 0` against the same shell line in the same rounds (the floor of any Node CLI).
// Every process is spawned directly and timed from its spawn to its exit; nothing else is used.
// The entry is the package's bin (dist/src/cli/sentinel.cjs, what `sentinel` runs) unless --cli
// names another; `vault verify` is timed both as `node ENTRY ...` and as the executable itself,
// started through its shebang line as a shell starts `sentinel` (which runs Node without
// NODE_EXTRA_CA_CERTS); the other figures as `node ENTRY`. The environment is this process's: run the bench under
// `env -u NODE_EXTRA_CA_CERTS` for a machine without that variable (the output says which).
// Usage: node dist/bench/cli-bench.js [BASE_DIR] [--runs N] [--only verify,status,help,deploy] [--cli ENTRY] [--against ENTRY] [--json]
// (--cli: another build's entry file, e.g. main.js of an older commit, to compare builds on the same machine;
// --against: another build's entry whose deploys are taken in the same rounds as this one's)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { packageRoot } from '../src/adapters/package-root.js';
import { formatTable, machineLine, split } from './lib/hash-bench-util.js';
import { inTurns, pairRatios } from './lib/process-timing.js';
import type { Contender, Proc, Timing } from './lib/process-timing.js';
import { buildLarge, buildSmall, warm } from './lib/trees.js';
import type { Tree } from './lib/trees.js';

const MB = 1000 * 1000;
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const runs = Number(flag('--runs') ?? 9);
const only = (flag('--only') ?? 'verify,status,help,deploy').split(',');
const json = args.includes('--json');
const baseArg = args.find((a, i) => !a.startsWith('--') && !['--runs', '--only', '--cli', '--against'].includes(args[i - 1] ?? ''));
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');

const node = process.execPath;
const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { bin: { sentinel: string } };
const cli = flag('--cli') ?? join(packageRoot(), pkg.bin.sentinel);
/** --against: another build's entry, deployed in the same rounds (deploy figures only). */
const against = flag('--against');
const entry = basename(cli);
const sentinel = (...argv: string[]): Proc => ({ cmd: node, args: [cli, ...argv] });
/** The entry file run as a program: the kernel reads its shebang line, as when a shell runs `sentinel`. */
const executable = (...argv: string[]): Proc => ({ cmd: cli, args: argv });
const caVar = process.env.NODE_EXTRA_CA_CERTS === undefined ? 'NODE_EXTRA_CA_CERTS unset' : 'NODE_EXTRA_CA_CERTS set';
const nodeE0: Proc = { cmd: node, args: ['-e', '0'] };

/** One figure: the sentinel's command against its peer. */
interface Figure {
  figure: string;
  sentinel: Timing;
  peer: Timing;
  /** median(sentinel) / median(peer): below 1 the sentinel is faster. */
  ratio: number;
  pairRatios: { min: number; median: number; max: number };
  target: string;
}

/** Untimed set-up step; throws with its stderr when it fails. */
function sh(cmd: string, argv: string[], cwd?: string): string {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', maxBuffer: 64 * MB });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ').slice(0, 300)} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

function removeSealed(path: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', path]);
  rmSync(path, { recursive: true, force: true });
}

async function compare(figure: string, target: string, a: Contender, b: Contender): Promise<Figure> {
  return (await compareForms([figure], target, [a], b))[0]!;
}

/** Several forms of one sentinel command, each against the same peer, all taken in turns with it. */
async function compareForms(figures: string[], target: string, forms: Contender[], peer: Contender): Promise<Figure[]> {
  const timings = await inTurns([...forms, peer], runs);
  const p = timings[forms.length]!;
  return forms.map((_, i) => ({ figure: figures[i]!, sentinel: timings[i]!, peer: p, ratio: timings[i]!.median / p.median, pairRatios: pairRatios(timings[i]!, p), target }));
}

interface Keys {
  pub: string;
  key: string;
}

// A vault with `src` deployed through the CLI itself; returns the vault and its live tree.
function deployedVault(dir: string, keys: Keys, src: string): { vault: string; live: string } {
  const vault = join(dir, 'vault');
  sh(node, [cli, 'vault', 'init', vault, '--trust', keys.pub, '--vault-id', 'bench']);
  sh(node, [cli, 'sign-and-deploy', src, '--key', keys.key, '--vault', vault]);
  return { vault, live: realpathSync(join(vault, 'current', 'tree')) };
}

/** A tree deployed into its own vault, with the relative paths of its files and the live copy warmed. */
interface BenchVault {
  vault: string;
  live: string;
  rel: string[];
}

async function vaultOf(work: string, keys: Keys, tree: Tree): Promise<BenchVault> {
  const dir = join(work, `vault-${tree.files.length}`);
  mkdirSync(dir);
  const { vault, live } = deployedVault(dir, keys, tree.root);
  const rel = tree.files.map((f) => relative(tree.root, f));
  removeSealed(tree.root);
  await warm(rel.map((r) => join(live, r)));
  return { vault, live, rel };
}

function verifyFigures(keys: Keys, tree: Tree, v: BenchVault, target: string): Promise<Figure[]> {
  const opensslPair = split(v.rel, 2).map((half): Proc => ({ cmd: 'openssl', args: ['dgst', '-sha256', ...half], cwd: v.live }));
  // --live-only: the same files as the peer (the default also reads every kept release and stored bundle).
  const args = ['vault', 'verify', v.vault, '--trust', keys.pub, '--live-only'];
  return compareForms(
    [`vault verify, ${tree.name}, node ${entry}`, `vault verify, ${tree.name}, the executable`],
    target,
    [
      { name: `node ${entry} vault verify V --trust K --live-only`, procs: [sentinel(...args)] },
      { name: `${entry} vault verify V --trust K --live-only (through its shebang)`, procs: [executable(...args)] },
    ],
    { name: 'openssl dgst -sha256 x 2 (same files)', procs: opensslPair },
  );
}

/** A release tree of 20 files of random bytes adding up to `bytes`, plus a VERSION file. */
function makeDeployTree(root: string, bytes: number): void {
  mkdirSync(join(root, 'data'), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(root, 'data', `part-${String(i).padStart(3, '0')}.bin`), randomBytes(Math.floor(bytes / 20)));
  writeFileSync(join(root, 'VERSION'), `${bytes}\n`);
}

// `sentinel deploy BUNDLE --vault V` against the shell line on the same content; both start from
// a flushed filesystem (untimed `sync -f`), and each run deploys the next version. With --against,
// another build's entry deploys in the same rounds, right after this one, into the same vault. `node
// -e 0` is taken in the same rounds too: the floor of any Node command line against the same peer.
async function deployFigures(work: string, keys: Keys, bytes: number, label: string): Promise<Figure[]> {
  const dir = join(work, `deploy-${label.replace(' ', '')}`);
  const src = join(dir, 'src');
  makeDeployTree(src, bytes);
  const { vault } = deployedVault(dir, keys, src);
  const entries = against === undefined ? [cli] : [cli, against];
  const total = (runs + 1) * entries.length;
  const bundles = Array.from({ length: total }, (_, i) => join(dir, `v${i + 2}.bundle`));
  bundles.forEach((b, i) => sh(node, [cli, 'sign', src, '--key', keys.key, '--vault', vault, '--version', String(i + 2), '--out', b]));
  const tar = join(dir, 'tree.tar');
  const sums = join(dir, 'SHA256SUMS');
  sh('tar', ['-cf', tar, '-C', src, '.']);
  writeFileSync(sums, sh('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 sha256sum'], src));
  const flush = (): void => void sh('sync', ['-f', dir]);
  const dest = (run: number): string => join(dir, `shell-${run}`);
  // Round `run` deploys versions in the order of `entries`, so every deploy is of a newer version.
  const deployOf = (entryFile: string, k: number): Contender => {
    const bundle = (run: number): string => bundles[run * entries.length + k]!;
    return { name: `${entryFile === cli ? '' : `${entryFile}: `}sentinel deploy B --vault V`, procs: (run) => [{ cmd: node, args: [entryFile, 'deploy', bundle(run), '--vault', vault] }], before: flush, after: (run) => rmSync(bundle(run), { force: true }) };
  };
  const forms = [...entries.map(deployOf), { name: 'node -e 0', procs: [nodeE0], before: flush }];
  const figures = [...entries.map((e) => `deploy, ${label} (20 files)${e === cli ? '' : `, ${e}`}`), `node -e 0 (the floor), against the ${label} shell line`];
  return compareForms(figures, label === '1 MB' ? 'whole process: see note' : '', forms, {
    name: 'sh: tar -x, sha256sum -c, chattr -R +i',
    procs: (run) => [{ cmd: 'sh', args: ['-c', 'mkdir "$1" && tar -xf "$2" -C "$1" && cd "$1" && sha256sum -c --quiet "$3" && chattr -R +i .', 'sh', dest(run), tar, sums] }],
    before: flush,
    after: (run) => removeSealed(dest(run)),
  });
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(baseArg ?? tmpdir(), 'sentinel-cli-bench-'));
  process.once('SIGINT', () => {
    removeSealed(work);
    process.exit(130);
  });
  const loadBefore = loadavg();
  const figures: Figure[] = [];
  try {
    const keys = { pub: join(work, 'bench.pub'), key: join(work, 'bench.key') };
    sh(node, [cli, 'keygen', '--out', join(work, 'bench')]);
    if (only.includes('verify') || only.includes('status')) {
      const small = buildSmall(join(work, 'small'));
      const v = await vaultOf(work, keys, small);
      if (only.includes('verify')) figures.push(...(await verifyFigures(keys, small, v, '<= 1.5')));
      if (only.includes('status')) {
        figures.push(await compare('vault status, 10,000-entry release', '<= 2', { name: 'sentinel vault status V', procs: [sentinel('vault', 'status', v.vault)] }, { name: 'node -e 0', procs: [nodeE0] }));
      }
      removeSealed(join(work, `vault-${small.files.length}`));
    }
    if (only.includes('verify')) {
      const large = buildLarge(join(work, 'large'));
      figures.push(...(await verifyFigures(keys, large, await vaultOf(work, keys, large), '<= 1.1')));
      removeSealed(join(work, `vault-${large.files.length}`));
    }
    if (only.includes('help')) {
      figures.push(await compare('--help', '<= 2', { name: 'sentinel --help', procs: [sentinel('--help')] }, { name: 'node -e 0', procs: [nodeE0] }));
    }
    if (only.includes('deploy')) {
      figures.push(...(await deployFigures(work, keys, 1 * MB, '1 MB')));
      figures.push(...(await deployFigures(work, keys, 100 * MB, '100 MB')));
    }
  } finally {
    removeSealed(work);
  }
  const loadAfter = loadavg();
  const load = `load average ${loadBefore[0]!.toFixed(1)} before, ${loadAfter[0]!.toFixed(1)} after; ${caVar}`;
  if (json) {
    console.log(JSON.stringify({ machine: machineLine(), cli, load, runs, figures }, null, 2));
    return;
  }
  console.log(`cli-bench: ${machineLine()}; ${cli}; ${runs} runs in turns after 1 warm-up; ${load}`);
  const s = (t: Timing): string => `${t.min.toFixed(3)} / ${t.median.toFixed(3)} / ${t.max.toFixed(3)}`;
  console.log(
    formatTable(
      ['figure', 'peer', 'sentinel s (min / median / max)', 'peer s (min / median / max)', 'sentinel / peer', 'pairs (min-max)', 'target'],
      figures.map((f) => [f.figure, f.peer.name, s(f.sentinel), s(f.peer), f.ratio.toFixed(2), `${f.pairRatios.min.toFixed(2)}-${f.pairRatios.max.toFixed(2)}`, f.target]),
      2,
    ),
  );
}

await main();
