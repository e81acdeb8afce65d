// Bundle creation (`sentinel sign`): scan a source tree, hash every file on
// all cores, build and sign the canonical manifest with each key, then stream head and payload into
// one file. Hashes are re-checked while copying, so a source changed mid-way fails instead of
// producing a bundle that no vault would accept.
import { SentinelError } from '../core/errors.js';
import type { SecretKey } from '../core/keys.js';
import { buildManifest, encodeManifest, payloadLayout } from '../core/manifest.js';
import type { ManifestEntry } from '../core/manifest.js';
import { encodeSignatures, signManifest } from '../core/signature.js';
import { encodeBundleHead } from '../core/bundle.js';
import { releaseIdOf } from '../core/trust.js';
import { HashPool } from '../adapters/hash.js';
import { scanTree } from '../adapters/tree.js';
import { writeBundle } from '../adapters/bundle-file.js';
import { sha512 } from './ed25519.js';

export interface CreateBundleOptions {
  keys: SecretKey[];
  vaultId: string;
  version: number;
  created: Date;
  expires: Date;
  out: string;
}

export interface CreatedBundle {
  path: string;
  releaseId: string;
  vaultId: string;
  version: number;
  signers: string[];
  files: number;
  payloadBytes: number;
  bundleBytes: number;
  manifestBytes: number;
}

/** The object form some callers use: `{ sourceDir, outPath, ... }`. */
export interface CreateBundleRequest extends Omit<CreateBundleOptions, 'out'> {
  sourceDir: string;
  outPath: string;
}

// Why: one signed, streamable bundle file from a directory tree; the signature is over the exact manifest bytes.
export async function createBundle(srcDir: string, opts: CreateBundleOptions, deps?: { hash: HashPool }): Promise<CreatedBundle>;
export async function createBundle(req: CreateBundleRequest, deps?: { hash: HashPool }): Promise<CreatedBundle>;
export async function createBundle(
  a: string | CreateBundleRequest,
  b?: CreateBundleOptions | { hash: HashPool },
  c?: { hash: HashPool },
): Promise<CreatedBundle> {
  let srcDir: string;
  let opts: CreateBundleOptions;
  let deps: { hash: HashPool } | undefined;
  if (typeof a === 'string') {
    srcDir = a;
    opts = b as CreateBundleOptions;
    deps = c;
  } else {
    const { sourceDir, outPath, ...rest } = a;
    srcDir = sourceDir;
    opts = { ...rest, out: outPath };
    deps = b as { hash: HashPool } | undefined;
  }
  if (opts.keys.length === 0) throw new SentinelError('usage', 'at least one signing key is required', { where: '--key' });
  const ownPool = deps === undefined ? new HashPool() : null;
  const hash = deps?.hash ?? ownPool!;
  try {
    const scanned = await scanTree(srcDir);
    const files = scanned.filter((e) => e.type === 'file');
    const hashes = await hash.hashFiles(files.map((f) => f.abs));
    const byAbs = new Map(hashes.map((h) => [h.path, h]));
    const absOf = new Map<string, string>();
    const entries: ManifestEntry[] = scanned.map((e): ManifestEntry => {
      if (e.type === 'dir') return { type: 'dir', path: e.path, mode: e.mode & 0o777 };
      if (e.type === 'symlink') return { type: 'symlink', path: e.path, target: e.target ?? '' };
      const h = byAbs.get(e.abs);
      if (h === undefined) throw new SentinelError('internal', 'file was not hashed', { where: e.abs });
      absOf.set(e.path, e.abs);
      return { type: 'file', path: e.path, mode: e.mode & 0o777, size: h.size, sha256: h.sha256 };
    });
    const manifest = buildManifest({ vaultId: opts.vaultId, version: opts.version, created: opts.created, expires: opts.expires, entries });
    const manifestBytes = encodeManifest(manifest);
    const signatureBytes = encodeSignatures(opts.keys.map((k) => signManifest(manifestBytes, k)));
    const head = encodeBundleHead(manifestBytes, signatureBytes);
    const layout = payloadLayout(manifest);
    const { bytes } = await writeBundle(
      opts.out,
      head,
      layout.files.map((f) => ({ entry: f.entry, abs: absOf.get(f.entry.path) ?? '' })),
    );
    return {
      path: opts.out,
      releaseId: releaseIdOf(manifest, manifestBytes, sha512),
      vaultId: opts.vaultId,
      version: opts.version,
      signers: [...new Set(opts.keys.map((k) => k.id))],
      files: layout.files.length,
      payloadBytes: layout.totalBytes,
      bundleBytes: bytes,
      manifestBytes: manifestBytes.length,
    };
  } finally {
    if (ownPool !== null) await ownPool.close();
  }
}
