// Extended attributes of tree entries for the lstat walk (the native pass counts them itself):
// through the addon where it is built, else one `getfattr -R` over the whole tree, which prints only
// the entries that carry any. Either way the tolerated LSM labels are left out (core's TOLERATED_XATTRS).
import { isAbsolute, join, relative } from 'node:path';
import { messageOf } from '../core/errors.js';
import { errnoOf } from '../core/errno.js';
import { NO_XATTRS, TOLERATED_XATTRS } from '../core/tree-check.js';
import type { Reading } from '../core/tree-check.js';
import { loadNative } from './native.js';
import type { NativeAddon } from './native.js';

/** Reads the untolerated extended attribute names of entries under one tree. */
export interface XattrLister {
  readonly kind: 'native' | 'getfattr';
  /** One reading per path (relative to `top`). */
  list(top: string, paths: readonly string[]): Promise<Reading<readonly string[]>[]>;
  /** One reading per absolute path, each read alone (not its subtree). */
  listPaths(paths: readonly string[]): Promise<Reading<readonly string[]>[]>;
}

/** Bound of one getfattr run over a whole tree. */
const GETFATTR_TIMEOUT_MS = 120_000;

function nativeLister(addon: NativeAddon & { untoleratedXattrs(path: string): string[] }): XattrLister {
  const read = (abs: string): Reading<readonly string[]> => {
    try {
      const names = addon.untoleratedXattrs(abs);
      return names.length === 0 ? NO_XATTRS : { ok: true, value: names };
    } catch (e) {
      return { ok: false, error: errnoOf(e) ?? messageOf(e) };
    }
  };
  return {
    kind: 'native',
    list: (top, paths) => Promise.resolve(paths.map((p) => read(join(top, p)))),
    listPaths: (paths) => Promise.resolve(paths.map(read)),
  };
}

/** getfattr's escaped form of a name or path (`\ooo` octal bytes, `\\`) back to text. */
function unescape(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    const oct = c === 0x5c ? /^[0-7]{3}/.exec(raw.subarray(i + 1, i + 4).toString('latin1')) : null;
    if (oct !== null) {
      bytes.push(parseInt(oct[0], 8));
      i += 3;
    } else if (c === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** `# file: PATH` blocks of names, as printed by getfattr without -d. */
export function parseGetfattr(out: string, top: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unescape(line.slice('# file: '.length));
      const rel = isAbsolute(abs) ? relative(top, abs) : abs;
      current = [];
      found.set(rel, current);
    } else if (line !== '' && current !== null) {
      const name = unescape(line.trim());
      if (!TOLERATED_XATTRS.includes(name)) current.push(name);
    }
  }
  return found;
}

/** getfattr over `targets` (names only, symlinks not followed): the names by path relative to `top`, or why it failed. */
async function getfattr(targets: readonly string[], top: string, recursive: boolean): Promise<Map<string, string[]> | { failed: string }> {
  const { runCommand } = await import('./process.js');
  const flags = recursive ? ['--recursive', '--physical'] : [];
  const r = await runCommand(['getfattr', ...flags, '--no-dereference', '--absolute-names', '--match=-', '--', ...targets], { timeoutMs: GETFATTR_TIMEOUT_MS, stripFinalNewline: false, env: { LC_ALL: 'C' } });
  if (!r.ok) return { failed: r.startError !== null ? `getfattr could not be run (${r.startError}; install the attr package)` : `getfattr failed: ${(r.stderr.trim().split('\n')[0] ?? '') || r.message}` };
  return parseGetfattr(r.stdout, top);
}

function readingsOf(found: Map<string, string[]> | { failed: string }, keys: readonly string[]): Reading<readonly string[]>[] {
  if (!(found instanceof Map)) {
    const failed: Reading<readonly string[]> = { ok: false, error: found.failed };
    return keys.map(() => failed);
  }
  return keys.map((k) => {
    const names = found.get(k);
    return names === undefined || names.length === 0 ? NO_XATTRS : { ok: true, value: names };
  });
}

const getfattrLister: XattrLister = {
  kind: 'getfattr',
  list: async (top, paths) => readingsOf(await getfattr([top], top, true), paths),
  listPaths: async (paths) => (paths.length === 0 ? [] : readingsOf(await getfattr(paths, '/', false), paths.map((p) => relative('/', p)))),
};

// Why: the walk must see what the native pass sees; the addon's call where it exists (no process),
// else getfattr (the attr package), whose failure is every entry's problem, never a pass.
export function defaultXattrLister(): XattrLister {
  const addon = loadNative();
  if (addon !== null && typeof addon.untoleratedXattrs === 'function') return nativeLister(addon as NativeAddon & { untoleratedXattrs(path: string): string[] });
  return getfattrLister;
}

export { getfattrLister };
