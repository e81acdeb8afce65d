// The bundle kept for heal must be exactly the bytes that were verified and staged (docs/VAULT.md#deploy):
// it is read back once before the commit point, its head compared with the verified head and every
// payload file hashed against its signed SHA-256. A bundle rewritten in place while it was being
// copied (or, moved in, through a descriptor opened before) is caught here instead of at the next heal.
// The digests are the addon's SHA-256 fed chunk by chunk (OpenSSL's EVP calls, as node:crypto's
// createHash makes them), so `vault verify` checking a stored bundle loads no node:crypto; without
// the addon, node:crypto's, loaded on first use. Both give the same digests (test/adapters/kept-bundle.test.ts).
import type * as Crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import type { BundleLimits } from '../core/limits.js';
import type { FileEntry } from '../core/manifest.js';
import { openBundle } from './bundle-file.js';
import { loadNative } from './native.js';

const CHUNK = 4 * 1024 * 1024;

/** A SHA-256 fed in pieces; digest() answers the lowercase hex of what was fed since the last digest, and begins again. */
export interface FileDigests {
  update(bytes: Uint8Array): void;
  digest(): string;
}

// Why: one digest per payload file, whose bytes arrive in chunks that do not follow the files'
// boundaries. `useAddon` false: node:crypto's (what a process without the addon uses; the tests compare both).
export function fileDigests(useAddon = true): FileDigests {
  const addon = useAddon ? loadNative() : null;
  if (addon?.sha256Stream !== undefined && addon.sha256Update !== undefined && addon.sha256Digest !== undefined) {
    const native = addon;
    const stream = native.sha256Stream!();
    return { update: (bytes) => native.sha256Update!(stream, bytes), digest: () => native.sha256Digest!(stream).toString('hex') };
  }
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof Crypto;
  let hash = createHash('sha256');
  return {
    update: (bytes) => void hash.update(bytes),
    digest: () => {
      const hex = hash.digest('hex');
      hash = createHash('sha256');
      return hex;
    },
  };
}

function differs(path: string, what: string): SentinelError {
  return new SentinelError('hash-mismatch', `the kept bundle differs from the verified one: ${what}`, { where: path });
}

// Why: a later heal trusts the kept bundle; only bytes whose digests were checked may be kept.
export async function checkKeptBundle(path: string, verified: { manifestBytes: Uint8Array; signatureBytes: Uint8Array }, files: readonly FileEntry[], limits: BundleLimits): Promise<void> {
  const kept = await openBundle(path, limits, { kept: true });
  try {
    if (!Buffer.from(kept.manifestBytes).equals(Buffer.from(verified.manifestBytes))) throw differs(path, 'manifest');
    if (!Buffer.from(kept.signatureBytes).equals(Buffer.from(verified.signatureBytes))) throw differs(path, 'signatures');
    const total = files.reduce((n, f) => n + f.size, 0);
    if (kept.size !== kept.payloadOffset + total) throw differs(path, `${kept.size} bytes instead of ${kept.payloadOffset + total}`);
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = kept.payloadOffset;
    let i = 0;
    let left = files[0]?.size ?? 0;
    const hash = fileDigests();
    // Sequential chunks across file boundaries: one read per 4 MiB, however small the files are.
    const finishFiles = () => {
      while (i < files.length && left === 0) {
        if (hash.digest() !== files[i]!.sha256) throw differs(path, files[i]!.path);
        i++;
        left = files[i]?.size ?? 0;
      }
    };
    finishFiles();
    while (i < files.length) {
      let n: number;
      try {
        ({ bytesRead: n } = await kept.handle.read(buf, 0, Math.min(CHUNK, kept.size - pos), pos));
      } catch (e) {
        throw ioError(e, 'cannot read the kept bundle', path);
      }
      if (n === 0) throw differs(path, 'shorter than its manifest');
      pos += n;
      let off = 0;
      while (off < n) {
        const take = Math.min(left, n - off);
        hash.update(buf.subarray(off, off + take));
        off += take;
        left -= take;
        finishFiles();
      }
    }
  } finally {
    await kept.close();
  }
}
