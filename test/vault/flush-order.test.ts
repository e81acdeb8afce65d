// Durability order of a deploy (docs/VAULT.md#durability), seen from the kernel: a deploying child
// runs under strace, and the order of its flushes and renames is checked against what the
// durability argument needs. A SIGKILL (crash.test.ts) keeps the page cache, so only the order of
// the calls shows what a power cut in between could lose.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { isRoot, needs } from '../helpers/env.js';
import { cleanupAll, closeDeps, makeVault } from '../helpers/vault-factory.js';
import { makeTempDir } from '../helpers/temp.js';

after(cleanupAll);

const child = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'crash-child.js');

function hasStrace(): boolean {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** One traced call: its name, its text (arguments as strace printed them), the line where it started and the one where it returned. */
interface Call {
  name: string;
  text: string;
  start: number;
  end: number;
  ok: boolean;
}

// strace -f writes a call that another thread interrupts as "<unfinished ...>" and "<... name resumed>".
function parseTrace(lines: string[]): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, { name: string; text: string; start: number }>();
  lines.forEach((line, i) => {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (m === null) return;
    const [, pid, rest] = m as unknown as [string, string, string];
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed !== null) {
      const p = pending.get(pid);
      pending.delete(pid);
      if (p !== undefined) calls.push({ ...p, text: p.text + resumed[2]!, end: i, ok: /= 0\b/.test(resumed[2]!) });
      return;
    }
    const call = /^(\w+)\((.*)$/.exec(rest);
    if (call === null) return;
    if (rest.endsWith('<unfinished ...>')) pending.set(pid, { name: call[1]!, text: rest, start: i });
    else calls.push({ name: call[1]!, text: rest, start: i, end: i, ok: /= 0\b/.test(rest) });
  });
  return calls.sort((a, b) => a.start - b.start);
}

describe('deploy flush order', () => {
  test('every rename a later step builds on is flushed before that step, and the swap before the deploy returns', async (t) => {
    if (needs(t, isRoot(), 'root') || needs(t, hasStrace(), 'strace')) return;
    const tv = await makeVault('flush-order');
    try {
      // Three kept releases (keep 3), so deploying the fourth raises highest.json and prunes one.
      for (let v = 1; v <= 3; v++) await tv.vault.deploy((await tv.bundle(v)).path);
      const b4 = await tv.bundle(4);
      const out = join(makeTempDir('flush-order-trace'), 'trace');
      const syscalls = 'syncfs,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,pwrite64,write,copy_file_range,open,openat,openat2,close';
      const r = spawnSync('strace', ['-f', '-y', '-qq', '-s', '256', '-e', `trace=${syscalls}`, '-o', out, process.execPath, child, tv.path, 'deploy', b4.path], { encoding: 'utf8' });
      assert.equal(r.status, 0, `deploy under strace failed: ${r.stdout} ${r.stderr}`);
      assert.match(r.stdout, /done/);
      const calls = parseTrace(readFileSync(out, 'utf8').split('\n'));
      const v = tv.path;
      const first = (what: string, pred: (c: Call) => boolean, from = -1): Call => {
        const c = calls.find((x) => x.start > from && pred(x));
        assert.ok(c !== undefined, `not in the trace${from >= 0 ? ` after line ${from}` : ''}: ${what}`);
        return c;
      };
      const fsyncOf = (dir: string) => (c: Call) => c.name === 'fsync' && c.ok && c.text.startsWith(`fsync(`) && c.text.includes(`<${dir}>`);

      const releaseIn = first('the move of the staged release into releases/', (c) => c.name === 'renameat2' && c.ok && c.text.includes(`<${v}/releases>`) && c.text.includes(`<${v}/staging>`));
      const bundleIn = first('the move of the bundle into bundles/', (c) => c.name === 'renameat2' && c.ok && c.text.includes(`<${v}/bundles>`));
      const syncfs = first('the syncfs of the staged release', (c) => c.name === 'syncfs' && c.ok);
      assert.ok(syncfs.end < releaseIn.start, 'the staged release (and the kept bundle copy) is on disk before it is moved');
      assert.ok(syncfs.end < bundleIn.start, 'the kept bundle copy is on disk before it is moved');
      // The kept copy is written (by the staging pass, or copied) before that syncfs, so the syncfs covers all of it.
      const keptWrites = calls.filter((c) => ['pwrite64', 'write', 'copy_file_range'].includes(c.name) && /<[^>]*\/staging\/r\d{8}-[0-9a-f]{12}\.bundle>/.test(c.text));
      assert.ok(keptWrites.length > 0, 'the writes of the kept bundle copy are in the trace');
      for (const w of keptWrites) assert.ok(w.end < syncfs.start, `the kept copy is written before the syncfs: ${w.text.slice(0, 120)}`);
      // syncfs(2) reports a writeback error only if it happened after its descriptor was opened: the
      // descriptor must be one opened before the first staged byte was written, or an error while
      // staging (background writeback of the payload or the kept copy) could go unreported.
      const fd = /^syncfs\((\d+)</.exec(syncfs.text)?.[1];
      assert.ok(fd !== undefined, `the syncfs names its descriptor: ${syncfs.text}`);
      const returned = (c: Call): string | undefined => /^ = (\d+)/.exec(c.text.slice(c.text.lastIndexOf(') = ') + 1))?.[1];
      const opened = calls.filter((c) => /^open(at2?)?$/.test(c.name) && c.start < syncfs.start && returned(c) === fd);
      const lastOpen = opened[opened.length - 1];
      assert.ok(lastOpen !== undefined, `the opening of the syncfs descriptor ${fd} is in the trace`);
      const firstWrite = first('the first write of the staged payload', (c) => c.name === 'pwrite64' && c.text.includes(`<${v}/staging/r`));
      assert.ok(lastOpen.end < firstWrite.start, `the syncfs descriptor was opened before staging wrote anything (${lastOpen.text.slice(0, 160)})`);

      const swap = first('the rename onto `current`', (c) => (c.name === 'rename' || c.name === 'renameat2') && c.ok && /\/current"/.test(c.text));
      const releasesFlushed = first('an fsync of releases/ after the move into it', fsyncOf(`${v}/releases`), releaseIn.start);
      const bundlesFlushed = first('an fsync of bundles/ after the move into it', fsyncOf(`${v}/bundles`), bundleIn.start);
      assert.ok(releasesFlushed.end < swap.start, 'releases/ is flushed before the swap');
      assert.ok(bundlesFlushed.end < swap.start, 'bundles/ is flushed before the swap');

      const rootFlushed = first('an fsync of the vault directory after the swap', fsyncOf(v), swap.start);
      const highest = first('the rename onto state/highest.json', (c) => c.name === 'rename' && c.ok && /\/highest\.json"/.test(c.text), swap.start);
      const out1 = first('the move of a pruned release out of releases/', (c) => c.name === 'rename' && c.ok && c.text.includes('/trash-'), swap.start);
      assert.ok(rootFlushed.end < highest.start, 'the swap is on disk before highest.json is raised');
      assert.ok(rootFlushed.end < out1.start, 'the swap is on disk before a release is pruned');

      const stateFlushed = first('an fsync of state/ after the rename of highest.json', fsyncOf(`${v}/state`), highest.start);
      const releasesAgain = first('an fsync of releases/ after the prune moved a release out', fsyncOf(`${v}/releases`), out1.start);
      const deleted = first('the deletion of the pruned release', (c) => (c.name === 'unlink' || c.name === 'unlinkat' || c.name === 'rmdir') && c.ok && c.text.includes('/trash-'), out1.start);
      assert.ok(releasesAgain.end < deleted.start, 'the move out of releases/ is on disk before the release is deleted');
      assert.ok(stateFlushed.end > highest.end, 'highest.json is flushed');
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
