// Test factory for the vault: temp dirs, source trees, signed bundles (good and tampered), vault
// deps that record events, a flag-and-hash snapshot of a whole vault, and cleanup that lifts +i first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultFlagStore, FS_IMMUTABLE_FL } from '../../src/adapters/flags.js';
import { HashPool } from '../../src/adapters/hash.js';
import { loadNative } from '../../src/adapters/native.js';
import { createBundle } from '../../src/vault/sign.js';
import type { CreatedBundle } from '../../src/vault/sign.js';
import { initVault } from '../../src/vault/index.js';
import type { Vault, VaultDeps, VaultEvent } from '../../src/vault/index.js';
import { lsattrLetters } from './attrs.js';
import { testKey, T0, ONE_YEAR_LATER } from './core-factory.js';
import { makeTempDir, removeSealed, removeTempDirs } from './temp.js';
import type { TestKey, TreeSpec } from './core-factory.js';

export { testKey, T0, ONE_YEAR_LATER };
export type { TestKey, TreeSpec };

export { removeSealed };

/** A directory under /tmp that `cleanupAll()` in an `after` hook removes (flags lifted first). */
export function tempDir(label: string): string {
  return makeTempDir(`vault-${label}`, '/tmp');
}

export function cleanupAll(): void {
  removeTempDirs();
}

/** Writes a tree spec under `root` (created). */
export function writeTree(root: string, tree: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  for (const e of tree) {
    const abs = join(root, e.path);
    if (e.type === 'dir') {
      mkdirSync(abs, { recursive: true });
      chmodSync(abs, e.mode ?? 0o755);
    } else if (e.type === 'file') {
      writeFileSync(abs, e.content);
      chmodSync(abs, e.mode ?? 0o644);
    } else symlinkSync(e.target, abs);
  }
  for (const e of [...tree].reverse()) if (e.type === 'dir') chmodSync(join(root, e.path), e.mode ?? 0o755);
}

/** A small release tree whose content depends on `tag`, so two versions differ in bytes. */
export function sampleTree(tag: string): TreeSpec {
  return [
    { type: 'dir', path: 'phi' },
    { type: 'file', path: 'phi/engine.py', content: `# ${tag}\ndef phi(x):\n    return x\n` },
    { type: 'file', path: 'phi/weights.bin', content: Buffer.from(`weights-${tag}-`.repeat(500)), mode: 0o600 },
    { type: 'dir', path: 'config', mode: 0o750 },
    { type: 'file', path: 'config/phi.json', content: `{"tag":"${tag}"}\n` },
    { type: 'symlink', path: 'current-engine', target: 'phi/engine.py' },
    { type: 'file', path: 'VERSION', content: `${tag}\n` },
    { type: 'file', path: 'empty', content: '' },
  ];
}

/** Records every vault event; `deps.hash` must be closed with `closeDeps`. */
export interface TestDeps extends VaultDeps {
  events: VaultEvent[];
}

export function makeDeps(over: Partial<VaultDeps> = {}): TestDeps {
  const events: VaultEvent[] = [];
  return {
    flags: defaultFlagStore(),
    hash: new HashPool(2),
    now: () => new Date('2026-06-01T00:00:00.000Z'),
    onEvent: (e) => events.push(e),
    events,
    ...over,
  };
}

export async function closeDeps(deps: VaultDeps): Promise<void> {
  await deps.hash.close();
}

export interface TestVault {
  vault: Vault;
  path: string;
  vaultId: string;
  keys: TestKey[];
  deps: TestDeps;
  /** Signs `tree` as `version` for this vault (or another vault id) with the given keys into a new bundle file. */
  bundle(version: number, tree?: TreeSpec, opts?: { keys?: TestKey[]; vaultId?: string; expires?: Date; created?: Date }): Promise<CreatedBundle>;
}

let counter = 0;

// Why: most vault tests start with a fresh sealed vault trusting one test key (`base`: another filesystem, e.g. a small tmpfs).
export async function makeVault(label: string, opts: { keys?: TestKey[]; threshold?: number; deps?: TestDeps; base?: string } = {}): Promise<TestVault> {
  const base = opts.base ?? tempDir(label);
  const path = join(base, 'vault');
  const keys = opts.keys ?? [testKey('vault-a')];
  const deps = opts.deps ?? makeDeps();
  const vaultId = `test-${label}-${process.pid}-${++counter}`.toLowerCase();
  const vault = await initVault(path, { trust: keys.map((k) => k.public), threshold: opts.threshold ?? 1, vaultId }, deps);
  return {
    vault,
    path,
    vaultId,
    keys,
    deps,
    bundle: async (version, tree, b = {}) => {
      const src = join(base, `src-${version}-${++counter}`);
      writeTree(src, tree ?? sampleTree(`v${version}`));
      return createBundle(
        src,
        {
          keys: (b.keys ?? keys).map((k) => k.secret),
          vaultId: b.vaultId ?? vaultId,
          version,
          created: b.created ?? T0,
          expires: b.expires ?? ONE_YEAR_LATER,
          out: join(base, `bundle-${version}-${counter}.bundle`),
        },
      );
    },
  };
}

/** Whether the immutable flag is set, read back with the real lsattr. */
export function lsattrImmutable(path: string): boolean {
  return lsattrLetters(path).includes('i');
}

/** Every path under `root` (root included), symlinks excluded, for flag checks. */
export function sealablePaths(root: string): string[] {
  const out: string[] = [root];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) continue;
      out.push(p);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

/** A byte-for-byte and flag-for-flag picture of a vault: path → type, mode, content hash or target, +i. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const flags = loadNative();
  const flagOf = (p: string): string => {
    if (flags !== null) return (flags.getFlags(p) & FS_IMMUTABLE_FL) !== 0 ? '+i' : '-i';
    return lsattrImmutable(p) ? '+i' : '-i';
  };
  const visit = (p: string, rel: string) => {
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.set(rel, `symlink -> ${readlinkSync(p)}`);
    else if (st.isFile()) out.set(rel, `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')} ${flagOf(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, `dir ${mode} ${flagOf(p)}`);
      for (const n of readdirSync(p).sort()) visit(join(p, n), `${rel}/${n}`);
    } else out.set(rel, `other ${mode}`);
  };
  visit(root, '.');
  return out;
}

/** Flips one byte of a file in place (a copy, so the original bundle stays good). */
export function corruptCopy(src: string, dest: string, offset: number): void {
  const b = readFileSync(src);
  assert.ok(offset >= 0 && offset < b.length, `offset ${offset} outside ${b.length}-byte file`);
  b[offset] = (b[offset] ?? 0) ^ 0x5a;
  writeFileSync(dest, b);
}

/** The vault's live tree directory (through `current`). */
export function liveTree(vaultPath: string): string {
  return join(vaultPath, 'current', 'tree');
}

/** Runs a command, asserting it exits 0. */
export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** What is in staging/ besides the vault lock (a file that stays there for good, docs/VAULT.md#locking). */
export function stagingLeftovers(vaultPath: string): string[] {
  return readdirSync(join(vaultPath, 'staging')).filter((n) => n !== '.lock');
}
