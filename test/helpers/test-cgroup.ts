// A cgroup v2 directory of a daemon test's own (its `protection.cgroupRoot`), and its removal once
// the daemon and its targets have left it.
import type { TestContext } from 'node:test';
import { existsSync, mkdirSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, needs } from './env.js';
import { waitFor } from './wait.js';

const V2 = '/sys/fs/cgroup/unified';

// Creates `sentinel-test-<label>-<pid>` under the cgroup v2 mount. null (the test skipped, or
// failed in CI) without root (`rootWhy` names what root is for) or without cgroup v2 there.
export function makeTestCgroup(t: TestContext, label: string, rootWhy = 'root'): string | null {
  if (needs(t, isRoot(), rootWhy)) return null;
  if (needs(t, existsSync(join(V2, 'cgroup.procs')), 'cgroup v2 at /sys/fs/cgroup/unified')) return null;
  const dir = join(V2, `sentinel-test-${label}-${String(process.pid)}`);
  mkdirSync(dir);
  return dir;
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
  rmdirSync(dir);
}

// Removes the cgroup and every one below it, retrying for up to 10 s while the last processes leave.
export async function removeTestCgroup(dir: string): Promise<void> {
  await waitFor('cgroups emptied', 10_000, () => {
    try {
      removeCgroupTree(dir);
      return true;
    } catch {
      return null;
    }
  });
}
