// Watching files: chokidar for the inbox; one inotify watch per directory (not per file) for the sealed vault;
// a bpftrace tracepoint for inode flag changes, which inotify does not report.
import { watch as fsWatch, type FSWatcher as NodeWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { createInterface } from 'node:readline';
import { watch as chokidarWatch } from 'chokidar';
import { spawnSupervised } from './process.js';

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

/** The flag-change tracer once attached; close() ends it within its grace period. */
export interface FlagChangeWatch {
  close(): Promise<void>;
}

// FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR (x86-64/arm64 encodings): the two ways to lift +i.
const FLAG_IOCTLS = ['0x40086602', '0x401c5820'];

// Why: chattr raises no inotify event, so without this a bare `chattr -i` is seen only by the periodic flag audit.
// A tracepoint pair reports each completed flag-changing ioctl by another process (throttled in the kernel to one
// line per 20 ms); the caller re-checks the flags. Resolves once attached; rejects when bpftrace cannot attach.
export async function watchFlagChanges(opts: { ownPid: number; binary?: string; attachTimeoutMs?: number; stopGraceMs?: number; onChange: (pid: number, comm: string) => void; onExit: (reason: string) => void }): Promise<FlagChangeWatch> {
  const cmdTest = FLAG_IOCTLS.map((c) => `args->cmd == ${c}`).join(' || ');
  const program = [
    'BEGIN { printf("attached\\n"); }',
    `tracepoint:syscalls:sys_enter_ioctl /(${cmdTest}) && pid != ${String(opts.ownPid)}/ { @pending[tid] = 1; }`,
    'tracepoint:syscalls:sys_exit_ioctl /@pending[tid]/ { delete(@pending[tid]); if (nsecs - @last > 20000000) { @last = nsecs; printf("flags %d %s\\n", pid, comm); } }',
    'END { clear(@pending); clear(@last); }',
  ].join('\n');
  const child = await spawnSupervised([opts.binary ?? 'bpftrace', '-B', 'line', '-e', program], { stdio: 'pipe', dieWithParent: true });
  let attached = false;
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 4096) stderr += b.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.attachTimeoutMs ?? 10_000;
    const timer = setTimeout(() => {
      void child.terminate({ signal: 'SIGKILL', graceMs: 0 });
      reject(new Error(`bpftrace did not attach within ${String(timeoutMs)} ms`));
    }, timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!attached && line === 'attached') {
        attached = true;
        clearTimeout(timer);
        // SIGTERM lets bpftrace detach; SIGKILL if it has not gone within the grace period (daemon stop must not hang).
        resolve({ close: () => child.terminate({ signal: 'SIGTERM', graceMs: opts.stopGraceMs ?? 2_000 }).then(() => undefined) });
        return;
      }
      const m = /^flags (\d+) (.*)$/.exec(line);
      if (m !== null) opts.onChange(Number(m[1]), m[2] ?? '');
    });
    child.onExit(({ exitCode, signal }) => {
      clearTimeout(timer);
      const why = `bpftrace exited (${signal ?? String(exitCode)}): ${stderr.split('\n').filter((l) => l !== '' && !l.includes('RLIMIT_MEMLOCK')).slice(-2).join(' ')}`;
      if (!attached) reject(new Error(why));
      else opts.onExit(why);
    });
  });
}
