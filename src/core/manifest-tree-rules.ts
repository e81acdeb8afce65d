// The manifest rules across entries (docs/FORMAT.md): the entries indexed by path as they pass the
// per-entry checks (duplicates found on the way), every parent a listed directory, and every symlink
// resolving inside the release. Part of the manifest rules (manifest-rules.ts).
import { comparePaths, showPath } from './canonical-json.js';
import { MAX_SYMLINK_DEPTH } from './limits.js';
import type { Problems } from './manifest-problems.js';

type Rec = Record<string, unknown>;

/**
 * The entries that passed the per-entry checks, first occurrence of each path, in manifest order.
 * While they arrive in path order, lookups are a binary search and nothing is allocated per entry;
 * a map is built only for input out of order (where order no longer tells duplicates apart) or for
 * symlink resolution.
 */
export class PathIndex {
  private readonly order: Int32Array;
  private count = 0;
  private map: Map<string, Rec> | null = null;
  /** Path of the last added entry (in path order, the only earlier path a new one can equal). */
  private last: string | null = null;

  constructor(private readonly entries: Rec[]) {
    this.order = new Int32Array(entries.length);
  }

  /** Adds entry i unless its path is already taken; `ordered` says whether it comes after every earlier path. Returns false for a duplicate. */
  add(i: number, path: string, ordered: boolean): boolean {
    if (!ordered) this.map ??= this.asMap();
    if (this.map !== null) {
      if (this.map.has(path)) return false;
      this.map.set(path, this.entries[i]!);
    } else if (path === this.last) return false;
    this.order[this.count++] = i;
    this.last = path;
    return true;
  }

  get(path: string): Rec | undefined {
    if (this.map !== null) return this.map.get(path);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[this.order[mid]!]!;
      const c = comparePaths(e.path as string, path);
      if (c === 0) return e;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  forEach(fn: (e: Rec, path: string) => void): void {
    for (let k = 0; k < this.count; k++) {
      const e = this.entries[this.order[k]!]!;
      fn(e, e.path as string);
    }
  }

  asMap(): Map<string, Rec> {
    if (this.map !== null) return this.map;
    const m = new Map<string, Rec>();
    this.forEach((e, path) => m.set(path, e));
    return m;
  }
}

/** The manifest as a tree, so symlink resolution costs one map lookup per component. */
interface TreeNode {
  entry: Rec | null;
  children: Map<string, TreeNode>;
}

function treeOf(byPath: ReadonlyMap<string, Rec>): TreeNode {
  const root: TreeNode = { entry: null, children: new Map() };
  const nodes = new Map<string, TreeNode>([['', root]]);
  const nodeAt = (path: string): TreeNode => {
    let n = nodes.get(path);
    if (n === undefined) {
      n = { entry: null, children: new Map() };
      nodes.set(path, n);
      const cut = path.lastIndexOf('/');
      nodeAt(cut < 0 ? '' : path.slice(0, cut)).children.set(path.slice(cut + 1), n);
    }
    return n;
  };
  for (const [path, e] of byPath) if (path !== '') nodeAt(path).entry = e;
  return root;
}

/** Where a lookup stands: the nodes from the root down (null once below a name the manifest does not list). */
type Walk = (TreeNode | null)[];

/** The location a symlink target resolves to, starting in directory `from`, or why it cannot be used. */
function resolveTarget(
  root: TreeNode,
  from: Walk,
  target: string,
  budget: { follows: number },
): Walk | 'escapes the release' | 'too many levels of symlinks' | 'passes through an absolute symlink' {
  if (target.startsWith('/')) return 'passes through an absolute symlink';
  let walk = [...from];
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (walk.length === 0) return 'escapes the release';
      walk.pop();
      continue;
    }
    const parent = walk.length === 0 ? root : walk[walk.length - 1]!;
    const node = parent === null ? null : (parent.children.get(c) ?? null);
    const e = node?.entry;
    if (e?.type === 'symlink' && typeof e.target === 'string') {
      if (++budget.follows > MAX_SYMLINK_DEPTH) return 'too many levels of symlinks';
      const r = resolveTarget(root, walk, e.target, budget);
      if (typeof r === 'string') return r;
      walk = r;
    } else walk.push(node);
  }
  return walk;
}

/** The walk to a directory given as components (null where a component is not listed). */
function walkTo(root: TreeNode, components: string[]): Walk {
  const walk: Walk = [];
  let n: TreeNode | null = root;
  for (const c of components) {
    n = n === null ? null : (n.children.get(c) ?? null);
    walk.push(n);
  }
  return walk;
}

/** Rules across entries: every parent is a listed directory, every symlink resolves inside the release. */
export function checkParentsAndLinks(byPath: PathIndex, problems: Problems): void {
  let root: TreeNode | null = null;
  // Siblings are adjacent in path order: the parent looked up last is usually the next one's too.
  let lastParent = '';
  let lastParentEntry: Rec | undefined;
  byPath.forEach((e, path) => {
    const cut = path.lastIndexOf('/');
    if (cut > 0) {
      if (cut !== lastParent.length || !path.startsWith(lastParent)) {
        lastParent = path.slice(0, cut);
        lastParentEntry = byPath.get(lastParent);
      }
      const parent = lastParentEntry;
      if (parent?.type !== 'dir') {
        const at = `manifest entry ${showPath(path)}`;
        if (parent === undefined) problems.add('bad-path', at, `parent directory ${showPath(path.slice(0, cut))} is not listed`);
        else if (parent.type === 'symlink') problems.add('bad-path', at, 'path passes through a symlink');
        else problems.add('bad-path', at, 'parent is not a directory');
      }
    }
    if (e.type === 'symlink' && typeof e.target === 'string' && e.target !== '' && !e.target.startsWith('/')) {
      root ??= treeOf(byPath.asMap());
      // The link itself counts: the kernel follows it too when its path is opened.
      const r = resolveTarget(root, walkTo(root, path.split('/').slice(0, -1)), e.target, { follows: 1 });
      if (typeof r === 'string') {
        const why = r === 'too many levels of symlinks' ? `symlink loop or chain of more than ${MAX_SYMLINK_DEPTH} links (too many levels of symlinks)` : `symlink ${r}`;
        problems.add('bad-path', `manifest entry ${showPath(path)} target`, why);
      }
    }
  });
}
