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
}

/** Bound of one getfattr run over a whole tree. */
const GETFATTR_TIMEOUT_MS = 120_000;

function nativeLister(addon: NativeAddon & { untoleratedXattrs(path: string): string[] }): XattrLister {
  return {
    kind: 'native',
    list(top, paths) {
      return Promise.resolve(
        paths.map((p) => {
          try {
            const names = addon.untoleratedXattrs(join(top, p));
            return names.length === 0 ? NO_XATTRS : { ok: true, value: names };
          } catch (e) {
            return { ok: false, error: errnoOf(e) ?? messageOf(e) };
          }
        }),
      );
    },
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

const getfattrLister: XattrLister = {
  kind: 'getfattr',
  async list(top, paths) {
    const { runCommand } = await import('./process.js');
    const r = await runCommand(['getfattr', '--recursive', '--physical', '--no-dereference', '--absolute-names', '--match=-', '--', top], { timeoutMs: GETFATTR_TIMEOUT_MS, stripFinalNewline: false, env: { LC_ALL: 'C' } });
    if (!r.ok) {
      const why = r.startError !== null ? `getfattr could not be run (${r.startError}; install the attr package)` : `getfattr failed: ${(r.stderr.trim().split('\n')[0] ?? '') || r.message}`;
      const failed: Reading<readonly string[]> = { ok: false, error: why };
      return paths.map(() => failed);
    }
    const found = parseGetfattr(r.stdout, top);
    return paths.map((p) => {
      const names = found.get(p);
      return names === undefined || names.length === 0 ? NO_XATTRS : { ok: true, value: names };
    });
  },
};

// Why: the walk must see what the native pass sees; the addon's call where it exists (no process),
// else getfattr (the attr package), whose failure is every entry's problem, never a pass.
export function defaultXattrLister(): XattrLister {
  const addon = loadNative();
  if (addon !== null && typeof addon.untoleratedXattrs === 'function') return nativeLister(addon as NativeAddon & { untoleratedXattrs(path: string): string[] });
  return getfattrLister;
}

export { getfattrLister };
