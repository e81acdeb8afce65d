// A manifest's top-level fields read from its first and last bytes, its entries not read at all
// (docs/FORMAT.md, docs/VAULT.md#status). In the canonical form the members are sorted by name, so
// `created` comes before `entries` and `expires`, `format`, `vaultId`, `version` after it:
//   {"created":"…","entries":[ … ],"expires":"…","format":"…","vaultId":"…","version":N}
// None of those values can hold a quote or a backslash, so the text after the entries array is
// matched from the end without reading the array. This proves nothing about the entries: it is
// only for bytes whose signatures verified (so they are the signer's, which a deploy parsed in full),
// and a caller says that it did not check the entries. Every manifest-level rule still runs on the
// values read (format, vault id, version, the two times), with the strict reader's messages.
import { DEFAULT_LIMITS, type BundleLimits } from './limits.js';
import { SentinelError } from './errors.js';
import type { Manifest } from './manifest.js';
import { Problems, checkTopLevel } from './manifest-rules.js';

/** A manifest without its entries. */
export type ManifestSummary = Omit<Manifest, 'entries'>;

/** Up to the first entry: at most 12 + 26 + 12 bytes in a valid manifest. */
const HEAD_BYTES = 64;
/** From the entries' `]` to the end: at most 13 + 26 + 12 + 31 + 13 + 66 + 12 + 16 + 1 bytes. */
const TAIL_BYTES = 256;
const HEAD = /^\{"created":"([^"\\]*)","entries":\[/;
const TAIL = /\],"expires":"([^"\\]*)","format":"([^"\\]*)","vaultId":"([^"\\]*)","version":(0|[1-9][0-9]*)\}$/;

/** Bytes as one character each (a non-ASCII byte becomes a character no rule accepts). */
function bytesAsText(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

// The manifest-level fields of canonical manifest bytes, checked by the manifest-level rules; the
// entries are neither read nor checked. Throws malformed-bundle when the head or tail is not in
// the canonical shape, or when a value breaks a rule.
export function readManifestSummary(bytes: Uint8Array, limits: BundleLimits = DEFAULT_LIMITS): ManifestSummary {
  if (bytes.length > limits.maxManifestBytes) {
    throw new SentinelError('too-large', `manifest of ${bytes.length} bytes exceeds the limit of ${limits.maxManifestBytes}`, { where: 'manifest' });
  }
  const head = HEAD.exec(bytesAsText(bytes.subarray(0, HEAD_BYTES)));
  const tail = TAIL.exec(bytesAsText(bytes.subarray(Math.max(0, bytes.length - TAIL_BYTES))));
  if (head === null || tail === null) {
    throw new SentinelError('malformed-bundle', `manifest's ${head === null ? 'head' : 'tail'} is not in canonical form`, { where: 'manifest' });
  }
  const summary = { created: head[1]!, expires: tail[1]!, format: tail[2]!, vaultId: tail[3]!, version: Number(tail[4]) };
  const problems = new Problems();
  checkTopLevel({ ...summary, entries: [] }, limits, problems);
  problems.throwIfAny();
  return summary as ManifestSummary;
}
