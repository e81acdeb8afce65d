// Loads the runners of the plain `vault verify`, `vault status` and `deploy` forms for `main.ts` and
// the executable (docs/ARCHITECTURE.md#start-up): the CommonJS bundles `npm run build` writes next
// to the entry, `status.cjs` (src/cli/plain-status.ts, `vault status` alone) and `plain.cjs`
// (src/cli/plain-runners.ts, verify and deploy), each compiled with the V8 code cache the build made
// for it (`status.cjs.cache`, `plain.cjs.cache`), so the process neither links an ES module graph
// nor parses and compiles the bundle's functions itself, and a status reads none of the other
// runners' code. When the bundle is missing, or this Node cannot require() an ES module (below
// 20.19; execa, which a vault without the native addon reaches for chattr, is one), the same module
// is imported instead. A cache only ever saves work: one that is missing, damaged, made by another
// Node or V8 flags, or made for another source is not used, and the bundle is compiled from its
// source as it is. `runCommonJs` and `writeCodeCache` are the one trusted-cache loader and its
// build step for any CommonJS file of the CLI, the same rules for every bundle.
import type * as Crypto from 'node:crypto';
import type * as Fs from 'node:fs';
import { createRequire } from 'node:module';
import type * as Path from 'node:path';
import type * as Url from 'node:url';
import type * as V8 from 'node:v8';
import type * as Vm from 'node:vm';
import type * as Runners from './plain-runners.js';
import type * as StatusRunner from './plain-status.js';

/** What each plain runners' bundle exports: its run of the plain forms it knows, and its failure path. */
export type PlainRunners = Pick<typeof Runners, 'runPlain' | 'reportFailure'> & Pick<typeof StatusRunner, 'runPlain' | 'reportFailure'>;

/** The bundle a command's words run from (`words`: the arguments after `sentinel`): `vault status` has its own. */
export function plainBundleName(words: readonly string[]): 'status.cjs' | 'plain.cjs' {
  return words[0] === 'vault' && words[1] === 'status' ? 'status.cjs' : 'plain.cjs';
}

// Node's own modules through require(), when first used (main.ts imports this file for every
// command; `--help` loads neither node:crypto nor node:vm, and the plain forms load node:crypto only
// without the native addon, see sha256For): an ES import of one builds its ES
// facade, which reads every export (node:fs's `promises` getter loads fs/promises, readline and the
// streams).
const require = createRequire(import.meta.url);
const fs = (): typeof Fs => require('node:fs') as typeof Fs;
const vm = (): typeof Vm => require('node:vm') as typeof Vm;

/** The cache file: the SHA-256 of the source it was made for, the SHA-256 of V8's data, V8's data. */
const HASH_BYTES = 32;

/** What happened to the code cache when a bundle was loaded. */
export type CacheUse = 'used' | 'absent' | 'untrusted' | 'other-source' | 'damaged' | 'refused-by-v8';

type Sha256 = (bytes: Buffer) => Buffer;

function nodeCryptoSha256(bytes: Buffer): Buffer {
  const { createHash } = require('node:crypto') as typeof Crypto;
  return createHash('sha256').update(bytes).digest();
}

// The SHA-256 for checking a bundle's cache: the native addon's (OpenSSL's EVP, node:crypto's own
// library) when it is built where `npm ci` builds it beside this package's dist/ and not turned off
// (SENTINEL_NO_NATIVE=1), else node:crypto's. The runners load that addon anyway, from the same file
// (src/adapters/native.ts: Node's module cache hands them this instance), and node:crypto then stays
// unloaded (about 3 ms of a `vault status`). An addon that is missing, broken or older than its
// `sha256` only means node:crypto: the answer is the same.
function sha256For(file: string): Sha256 {
  if (process.env.SENTINEL_NO_NATIVE === '1') return nodeCryptoSha256;
  const path = require('node:path') as typeof Path;
  try {
    const addon = require(path.join(path.dirname(file), '..', '..', '..', 'native', 'build', 'Release', 'sentinel_native.node')) as { sha256?: unknown };
    if (typeof addon.sha256 === 'function') return addon.sha256 as Sha256;
  } catch {
    // not built, or not loadable here: node:crypto below
  }
  return nodeCryptoSha256;
}

function cjsWrapper(source: Buffer): string {
  // The one wrapper both the build and the loader compile: V8's cache is for this exact text.
  return `(function (exports, require, module, __filename, __dirname) { ${source.toString('utf8')}\n});`;
}

/** A regular file's bytes with its owner and mode, read through one descriptor; `bytes` is absent for anything else. */
function readHeld(path: string, flags: number): { bytes?: Buffer; uid: number; mode: number } {
  const { openSync, fstatSync, readFileSync, closeSync, constants } = fs();
  const fd = openSync(path, constants.O_RDONLY | flags);
  try {
    const st = fstatSync(fd);
    return { bytes: st.isFile() ? readFileSync(fd) : undefined, uid: st.uid, mode: st.mode };
  } finally {
    closeSync(fd);
  }
}

// A code cache is code: V8 runs the bytecode it holds (its own check compares only the source's
// length, its version and flags; release builds keep no checksum of the data). So the cache is used
// only when it is a regular file of the bundle's owner that no group or other user may write, made
// for this very source, and its data is whole; anything else compiles the bundle from its source.
function trustedCacheData(file: string, source: Buffer, sourceUid: number, sha256: Sha256): { data?: Buffer; use: CacheUse } {
  let held;
  try {
    // Not followed if it is a symlink; a FIFO put there does not block the open.
    const { O_NOFOLLOW, O_NONBLOCK } = fs().constants;
    held = readHeld(`${file}.cache`, O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return { use: 'absent' }; // absent, a symlink or unreadable
  }
  const { bytes } = held;
  if (bytes === undefined || held.uid !== sourceUid || (held.mode & 0o022) !== 0) return { use: 'untrusted' };
  if (bytes.length <= 2 * HASH_BYTES || !bytes.subarray(0, HASH_BYTES).equals(sha256(source))) return { use: 'other-source' };
  const data = bytes.subarray(2 * HASH_BYTES);
  if (!bytes.subarray(HASH_BYTES, 2 * HASH_BYTES).equals(sha256(data))) return { use: 'damaged' };
  return { data, use: 'used' };
}

/** Compiles and runs a CommonJS file with its code cache when the cache is for this very source. */
export function runCommonJs(file: string): { exports: unknown; cache: CacheUse } {
  const held = readHeld(file, 0);
  const source = held.bytes ?? fs().readFileSync(file); // not a regular file: its own error
  const trusted = trustedCacheData(file, source, held.uid, sha256For(file));
  let cache = trusted.use;
  const cachedData = trusted.data;
  // No import() callback: a function taken from a code cache would not have it, so the bundle holds
  // no import() (scripts/bundle-cli.mjs turns those of Node's modules into require() and refuses any other).
  const script = new (vm().Script)(cjsWrapper(source), { filename: file, cachedData });
  if (cachedData !== undefined) cache = script.cachedDataRejected === true ? 'refused-by-v8' : 'used';
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;
  const module = { exports: {} as unknown };
  const path = require('node:path') as typeof Path;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
  return { exports: module.exports, cache };
}

// Build step (src/cli/build-assets.ts): the code cache of a CommonJS file, with every function
// compiled (V8 compiles a function on its first call otherwise, and a cache holds only what was
// compiled). --no-lazy is V8's switch for that; it is set back before the cache is written, so the
// cache carries the flags a plain `node` process runs with, and V8 takes it there.
export function writeCodeCache(file: string): void {
  const source = fs().readFileSync(file);
  const v8 = require('node:v8') as typeof V8;
  v8.setFlagsFromString('--no-lazy');
  let script: Vm.Script;
  try {
    script = new (vm().Script)(cjsWrapper(source), { filename: file });
  } finally {
    v8.setFlagsFromString('--lazy');
  }
  const data = script.createCachedData();
  fs().writeFileSync(`${file}.cache`, Buffer.concat([nodeCryptoSha256(source), nodeCryptoSha256(data), data]), { mode: 0o644 });
}

/** `dirUrl`: the URL of the directory holding the entry (and the bundles), ending in '/'; `words`: the arguments after `sentinel`. */
export async function loadPlainRunners(dirUrl: string, words: readonly string[]): Promise<PlainRunners> {
  const name = plainBundleName(words);
  if ((process.features as { require_module?: boolean }).require_module === true) {
    const { fileURLToPath } = require('node:url') as typeof Url;
    const file = fileURLToPath(new URL(name, dirUrl));
    try {
      return runCommonJs(file).exports as PlainRunners;
    } catch (e) {
      // Only the bundle itself missing falls back; an error inside it is the command's own failure.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || (e as NodeJS.ErrnoException).path !== file) throw e;
    }
  }
  return name === 'status.cjs' ? import('./plain-status.js') : import('./plain-runners.js');
}
