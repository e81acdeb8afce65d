// Watching files: chokidar for the inbox; one inotify watch per directory (not per file) for the sealed vault.
// Inode flag changes, which inotify does not report, come from the eBPF engine (daemon/tamper-watch.ts).
import { watch as fsWatch, type FSWatcher as NodeWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { watch as chokidarWatch } from 'chokidar';

/** The directory watches of a tree, closed together. */
export interface TreeWatch {
  /** Number of directories watched. */
  readonly watched: number;
  close(): void;
}

async function listDirs(root: string, depth: number): Promise<string[]> {
  const out: string[] = [root];
  const walk = async (dir: string, level: number): Promise<void> => {
    if (level >= depth) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        const p = join(dir, e.name);
        out.push(p);
        await walk(p, level + 1);
      }
    }
  };
  await walk(root, 0);
  return out;
}

// Why: a sealed file cannot change until its flags change, and a directory watch sees IN_ATTRIB/IN_MODIFY/IN_CREATE/IN_DELETE of
// its children, so one watch per directory sees every tamper at a fraction of chokidar's per-file cost (idle RSS; docs/DAEMON.md).
export async function watchDirectories(roots: string[], opts: { depth: number; onEvent: (path: string) => void; onError: (err: Error) => void }): Promise<TreeWatch> {
  const watchers: NodeWatcher[] = [];
  for (const root of roots) {
    for (const dir of await listDirs(root, opts.depth)) {
      try {
        const w = fsWatch(dir, { persistent: false }, (_event, name) => {
          opts.onEvent(name === null ? dir : join(dir, name));
        });
        w.on('error', (err) => opts.onError(err));
        watchers.push(w);
      } catch (err) {
        opts.onError(err as Error);
      }
    }
  }
  return {
    watched: watchers.length,
    close(): void {
      for (const w of watchers) w.close();
    },
  };
}

/** The inbox watch: ready once the directory was read, closed at stop. */
export interface InboxWatch {
  ready: Promise<void>;
  close(): Promise<void>;
}

// Why: bundles dropped by scp/rsync/config management; a file is handed over once it is complete
// (`*.bundle` appeared by rename, or unchanged for stableMs); `*.tmp` and dot-files are never picked up.
export function watchInbox(dir: string, opts: { stableMs: number; onBundle: (path: string) => void; onError: (err: Error) => void }): InboxWatch {
  const watcher = chokidarWatch(dir, {
    depth: 0,
    ignoreInitial: false,
    persistent: true,
    awaitWriteFinish: opts.stableMs > 0 ? { stabilityThreshold: opts.stableMs, pollInterval: Math.max(10, Math.floor(opts.stableMs / 5)) } : false,
    ignored: (path, stats) => {
      if (path === dir) return false;
      if (stats?.isDirectory() === true) return true;
      const name = basename(path);
      return name.startsWith('.') || (stats?.isFile() === true && !name.endsWith('.bundle'));
    },
  });
  watcher.on('add', (path: unknown) => {
    if (typeof path === 'string' && path.endsWith('.bundle')) opts.onBundle(path);
  });
  watcher.on('error', (err) => opts.onError(err instanceof Error ? err : new Error(String(err))));
  const ready = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return { ready, close: () => watcher.close() };
}
