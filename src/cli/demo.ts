// `sentinel demo`: the whole vault story on a throwaway vault, as a list of steps that each check
// what they show (the demo is itself a test); later steps (daemon, eBPF recovery) are appended.
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../adapters/package-root.js';
import { performance } from 'node:perf_hooks';
import { defaultFlagStore, FS_IMMUTABLE_FL, unsealTree } from '../adapters/flags.js';
import { SentinelError, isSentinelError } from '../core/errors.js';
import type { SecretKey } from '../core/keys.js';
import { asSentinelError, reportFailure } from './failure.js';
import { generateKeyFiles, readPublicKeyFile, readSecretKeyFile } from './key-files.js';
import { signAndDeploy, signTree } from './release-commands.js';
import { readVaultInfo } from '../vault/index.js';
import { createVault, withVault } from './vault-access.js';
import { describeStatus } from './vault-commands.js';
import { paint } from './style.js';
import { makeTempDir, rootErrno, tmpdirWhere } from './temp-dir.js';

/** State shared by the steps of one demo run; steps may add their own fields under `extra`. */
export interface DemoContext {
  readonly root: string;
  readonly vault: string;
  readonly sample: string;
  keys: { release?: SecretKey; intruder?: SecretKey; releasePub?: string; intruderPub?: string };
  extra: Record<string, unknown>;
  /** Lines printed under the step's title. */
  say(line: string): void;
}

/** One step: `run` returns normally when the step behaved as expected, throws otherwise. */
export interface DemoStep { title: string; run(ctx: DemoContext): Promise<void> }

const DAY_MS = 86_400_000;

// The sample Φ-engine tree shipped in examples/ (found from the package root, wherever this module was bundled).
export async function findSampleTree(): Promise<string> {
  const p = join(packageRoot(), 'examples', 'phi-engine');
  if (await fs.stat(p).then((s) => s.isDirectory(), () => false)) return p;
  throw new SentinelError('not-found', 'sample tree examples/phi-engine not found next to the sentinel install', { where: 'examples/phi-engine' });
}

/** Where the live release's files are (the vault layout of docs/VAULT.md). */
export function liveTreeOf(vault: string): string {
  return join(vault, 'current', 'tree');
}

function expectCode(e: unknown, codes: string[], what: string): SentinelError {
  const err = asSentinelError(e);
  if (!codes.includes(err.code)) throw new SentinelError('internal', `${what}: expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`, { cause: e });
  return err;
}

async function liveVersion(vault: string): Promise<number | null> {
  return withVault(vault, async (v) => (await v.status()).version);
}

async function verifyOk(ctx: DemoContext): Promise<void> {
  const report = await withVault(ctx.vault, async (v) => v.verify());
  if (!report.ok) throw new SentinelError('tampered', `verify reported ${report.problems.length} problem(s): ${report.problems.map((p) => `${p.code} ${p.path ?? ''}`).join('; ')}`, { where: ctx.vault });
  ctx.say(`intact: signature, every hash and mode, +i on every file and directory`);
}

async function firstLiveFile(vault: string): Promise<string> {
  const m = await withVault(vault, async (v) => v.liveManifest());
  const entry = m.manifest.entries.find((e) => e.type === 'file');
  if (entry === undefined) throw new SentinelError('internal', 'the live release has no file', { where: vault });
  return entry.path;
}

// The vault story, in order: seal, deploy, refuse a write, tamper and heal, refuse an untrusted bundle.
export const vaultDemoSteps: DemoStep[] = [
  {
    title: 'generate a release key and an untrusted "intruder" key (sentinel keygen)',
    async run(ctx) {
      const dir = join(ctx.root, 'keys');
      await fs.mkdir(dir, { mode: 0o700 });
      const rel = await generateKeyFiles(join(dir, 'release'), 'demo release key');
      const bad = await generateKeyFiles(join(dir, 'intruder'), 'demo untrusted key');
      const mode = (await fs.stat(rel.keyPath)).mode & 0o777;
      if (mode !== 0o600) throw new SentinelError('internal', `secret key mode is ${mode.toString(8)}, expected 600`, { where: rel.keyPath });
      ctx.keys = { release: await readSecretKeyFile(rel.keyPath), intruder: await readSecretKeyFile(bad.keyPath), releasePub: rel.pubPath, intruderPub: bad.pubPath };
      ctx.say(`release key ${rel.keyId} (secret 0600), intruder key ${bad.keyId}`);
    },
  },
  {
    title: 'create and seal a vault trusting only the release key (sentinel vault init)',
    async run(ctx) {
      const pub = await readPublicKeyFile(ctx.keys.releasePub ?? '');
      const v = await createVault(ctx.vault, { trust: [pub], threshold: 1, vaultId: `demo-${process.pid}` });
      ctx.say(`vault ${v.vaultId} at ${v.path}`);
    },
  },
  {
    title: 'sign and deploy the sample Φ engine as version 1 (sentinel sign-and-deploy)',
    async run(ctx) {
      const s = await signAndDeploy(ctx.sample, { keys: [needKey(ctx.keys.release)], target: { vault: ctx.vault }, expiresInMs: DAY_MS });
      if (s.version !== 1) throw new SentinelError('internal', `expected version 1, got ${s.version}`);
      ctx.say(`version ${s.version}, release ${s.releaseId}`);
    },
  },
  { title: 'verify the live release (sentinel vault verify)', run: verifyOk },
  {
    title: 'write into the vault as root: the kernel refuses (EPERM)',
    async run(ctx) {
      const rel = await firstLiveFile(ctx.vault);
      const file = join(liveTreeOf(ctx.vault), rel);
      for (const [what, attempt] of [
        [`append to ${rel}`, () => fs.appendFile(file, 'x')],
        ['create a new file in the tree', () => fs.writeFile(join(liveTreeOf(ctx.vault), 'backdoor.py'), 'x', { flag: constants.O_CREAT | constants.O_WRONLY })],
        [`delete ${rel}`, () => fs.unlink(file)],
      ] as const) {
        try {
          await attempt();
        } catch (e) {
          const errno = (e as NodeJS.ErrnoException).code;
          if (errno !== 'EPERM') throw new SentinelError('internal', `${what}: expected EPERM, got ${errno ?? String(e)}`, { cause: e });
          ctx.say(`${what}: ${errno} (operation not permitted)`);
          continue;
        }
        throw new SentinelError('unsealed', `${what} succeeded: the vault is not sealed`, { where: file });
      }
    },
  },
  {
    title: 'tamper as root (lift +i, change one byte) and watch verify catch it, then heal',
    async run(ctx) {
      const rel = await firstLiveFile(ctx.vault);
      const file = join(liveTreeOf(ctx.vault), rel);
      const flags = defaultFlagStore();
      await flags.setFlag(file, FS_IMMUTABLE_FL, false);
      const bytes = await fs.readFile(file);
      bytes[0] = (bytes[0] ?? 0) ^ 0x01;
      await fs.writeFile(file, bytes);
      await flags.setFlag(file, FS_IMMUTABLE_FL, true);
      ctx.say(`changed byte 0 of ${rel} and put +i back`);
      const report = await withVault(ctx.vault, async (v) => v.verify());
      if (report.ok) throw new SentinelError('internal', 'verify passed a tampered release');
      ctx.say(`verify: ✘ ${report.problems.map((p) => `${p.code} ${p.path ?? ''}`.trim()).join('; ')}`);
      const healed = await withVault(ctx.vault, async (v) => v.heal());
      ctx.say(`healed from the stored signed bundle (version ${healed.version})`);
      await verifyOk(ctx);
    },
  },
  {
    title: 'a bundle signed by the untrusted key is rejected and the vault is unchanged',
    async run(ctx) {
      const before = await liveVersion(ctx.vault);
      const out = join(ctx.root, 'intruder.bundle');
      const { vaultId } = await readVaultInfo(ctx.vault);
      await signTree(ctx.sample, { keys: [needKey(ctx.keys.intruder)], vaultId, version: (before ?? 0) + 1, expiresInMs: DAY_MS, out });
      try {
        await withVault(ctx.vault, async (v) => v.deploy(out));
      } catch (e) {
        const err = expectCode(e, ['untrusted-key'], 'untrusted bundle');
        ctx.say(`rejected: ${err.toLine()}`);
        const after = await liveVersion(ctx.vault);
        if (after !== before) throw new SentinelError('internal', `live version changed from ${String(before)} to ${String(after)}`);
        await verifyOk(ctx);
        return;
      }
      throw new SentinelError('untrusted-key', 'a bundle signed by an untrusted key was deployed', { where: out });
    },
  },
  {
    title: 'change the tree and deploy version 2 (sentinel sign-and-deploy)',
    async run(ctx) {
      const v2 = join(ctx.root, 'phi-engine-v2');
      await fs.cp(ctx.sample, v2, { recursive: true, verbatimSymlinks: true });
      const cfgPath = join(v2, 'config', 'phi.json');
      const cfg = JSON.parse(await fs.readFile(cfgPath, 'utf8')) as Record<string, unknown>;
      await fs.writeFile(cfgPath, `${JSON.stringify({ ...cfg, release: 2, normalise: false }, null, 2)}\n`);
      const s = await signAndDeploy(v2, { keys: [needKey(ctx.keys.release)], target: { vault: ctx.vault }, expiresInMs: DAY_MS });
      if (s.version !== 2) throw new SentinelError('internal', `expected version 2, got ${s.version}`);
      ctx.say(`version ${s.version}, release ${s.releaseId} (config/phi.json changed)`);
    },
  },
  { title: 'verify version 2', run: verifyOk },
  {
    title: 'vault status (sentinel vault status)',
    async run(ctx) {
      const st = await withVault(ctx.vault, async (v) => v.status());
      if (st.version !== 2) throw new SentinelError('internal', `status says version ${String(st.version)}, expected 2`);
      for (const line of describeStatus(st)) ctx.say(line);
    },
  },
];

function needKey(k: SecretKey | undefined): SecretKey {
  if (k === undefined) throw new SentinelError('internal', 'the keygen step did not run');
  return k;
}

const tick = '\u2714';
const cross = '\u2718';

// Runs the steps in order, stops at the first unexpected behaviour; returns the exit code.
export async function runDemo(opts: { keep?: boolean; steps?: DemoStep[]; out?: (line: string) => void } = {}): Promise<number> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const c = paint(opts.out === undefined ? process.stdout : {});
  const steps = opts.steps ?? vaultDemoSteps;
  const sample = await findSampleTree();
  const root = await makeTempDir('sentinel-demo-');
  const ctx: DemoContext = { root, vault: join(root, 'vault'), sample, keys: {}, extra: {}, say: (l) => out(`      ${l}`) };
  out(`omnimind-sentinel demo — temporary vault ${ctx.vault}`);
  out(`sample Φ-engine tree: ${ctx.sample}\n`);
  let failure: SentinelError | undefined;
  const started = performance.now();
  for (const [i, step] of steps.entries()) {
    const t0 = performance.now();
    const buffered: string[] = [];
    ctx.say = (l) => buffered.push(`      ${l}`);
    try {
      await step.run(ctx);
      out(`${c.green(tick)} [${i + 1}/${steps.length}] ${step.title} (${(performance.now() - t0).toFixed(0)} ms)`);
      for (const l of buffered) out(l);
    } catch (e) {
      out(`${c.red(cross)} [${i + 1}/${steps.length}] ${step.title} (${(performance.now() - t0).toFixed(0)} ms)`);
      for (const l of buffered) out(l);
      const err = asSentinelError(e);
      out(`      ${err.toLine()}`);
      const failed = `demo step ${i + 1}/${steps.length} (${step.title}) failed: ${err.message}`;
      // The demo's vault is under TMPDIR: a full filesystem there is the operator's to change, so the line names it.
      // (The addon's staging names the errno only in its message, as every '(ERRNO)' message does.)
      const full = rootErrno(e) === 'ENOSPC' || err.message.includes('(ENOSPC)');
      const room = `${failed} at ${err.where ?? root}: no space left on the filesystem of the demo's temporary directory; set TMPDIR to a directory on a filesystem with room`;
      failure = full ? new SentinelError(err.code, room, { where: tmpdirWhere(), cause: e }) : new SentinelError(err.code, failed, { where: err.where, cause: e });
      break;
    }
  }
  out('');
  if (opts.keep === true) out(`kept ${root} (the vault stays sealed: chattr -R -f -i ${root} before deleting it)`);
  else await cleanUp(root);
  out(failure !== undefined ? `${c.red(cross)} demo failed` : `${c.green(tick)} demo finished: every step behaved as expected (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  // The failed step's own error is the one stderr line, so its code and the exit code agree.
  return failure !== undefined ? reportFailure(failure) : 0;
}

// Lifts +i everywhere under the demo directory, then deletes it.
async function cleanUp(root: string): Promise<void> {
  try {
    await unsealTree(defaultFlagStore(), root);
  } catch (e) {
    if (!isSentinelError(e)) throw e;
  }
  await fs.rm(root, { recursive: true, force: true });
}
