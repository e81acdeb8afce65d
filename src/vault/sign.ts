// Bundle creation (`sentinel sign`, docs/SECURITY.md#signing-a-source-tree): walk the source tree
// through directory fds, reserve room for the head (its length does not depend on the hashes), copy
// every file once from one open file while hashing it, then build and sign the canonical manifest with
// those hashes and write the head in front. What is signed is exactly what was copied.
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { encodeBase64 } from '../core/keys.js';
import type { SecretKey } from '../core/keys.js';
import { buildManifest, encodeManifest, payloadLayout } from '../core/manifest.js';
import type { Manifest, ManifestEntry } from '../core/manifest.js';
import { encodeSignatures, signManifest } from '../core/signature.js';
import { encodeBundleHead } from '../core/bundle.js';
import { releaseIdOf } from '../core/trust.js';
import { SourceTree } from '../adapters/tree.js';
import type { ScannedEntry } from '../adapters/tree.js';
import { BundleWriter } from '../adapters/bundle-writer.js';
import { sha512 } from './ed25519.js';

/** A SHA-256 of the right width for sizing the manifest before the real ones are known. */
const PLACEHOLDER_SHA256 = '0'.repeat(64);

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

function entriesOf(scanned: readonly ScannedEntry[], hashes: ReadonlyMap<string, string>): ManifestEntry[] {
  return scanned.map((e): ManifestEntry => {
    if (e.type === 'dir') return { type: 'dir', path: e.path, mode: e.mode & 0o777 };
    if (e.type === 'symlink') return { type: 'symlink', path: e.path, target: e.target ?? '' };
    return { type: 'file', path: e.path, mode: e.mode & 0o777, size: e.size, sha256: hashes.get(e.path) ?? PLACEHOLDER_SHA256 };
  });
}

// Why: one signed, streamable bundle file from a directory tree; the signature is over the exact manifest bytes.
export async function createBundle(srcDir: string, opts: CreateBundleOptions): Promise<CreatedBundle>;
export async function createBundle(req: CreateBundleRequest): Promise<CreatedBundle>;
export async function createBundle(a: string | CreateBundleRequest, b?: CreateBundleOptions): Promise<CreatedBundle> {
  let srcDir: string;
  let opts: CreateBundleOptions;
  if (typeof a === 'string') {
    srcDir = a;
    opts = b!;
  } else {
    const { sourceDir, outPath, ...rest } = a;
    srcDir = sourceDir;
    opts = { ...rest, out: outPath };
  }
  if (opts.keys.length === 0) throw new SentinelError('usage', 'at least one signing key is required', { where: '--key' });
  const tree = await SourceTree.open(srcDir, { checkReadable: false });
  try {
    const manifestOf = (hashes: ReadonlyMap<string, string>) =>
      buildManifest({ vaultId: opts.vaultId, version: opts.version, created: opts.created, expires: opts.expires, entries: entriesOf(tree.entries, hashes) });
    // The manifest, and so the head, has the same length whatever the hashes are (fixed-width hex),
    // and a signature block's length depends only on the key ids (every signature is 64 bytes).
    const draft = manifestOf(new Map());
    const sizingSignatures = encodeSignatures(opts.keys.map((k) => ({ keyId: k.id, signature: encodeBase64(new Uint8Array(64)) })));
    const writer = await BundleWriter.create(opts.out, encodeBundleHead(encodeManifest(draft), sizingSignatures).length);
    let manifest: Manifest;
    let manifestBytes: Uint8Array;
    let bytes: number;
    try {
      const hashes = new Map<string, string>();
      for (const { entry } of payloadLayout(draft).files) {
        const fd = tree.openFile(entry.path);
        try {
          hashes.set(entry.path, await writer.copyFile(fd, entry.size, join(tree.root, entry.path)));
        } finally {
          closeSync(fd);
        }
      }
      manifest = manifestOf(hashes);
      manifestBytes = encodeManifest(manifest);
      const signatureBytes = encodeSignatures(opts.keys.map((k) => signManifest(manifestBytes, k)));
      ({ bytes } = await writer.finish(encodeBundleHead(manifestBytes, signatureBytes)));
    } catch (e) {
      await writer.abort();
      throw e;
    }
    const layout = payloadLayout(draft);
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
    tree.close();
  }
}
