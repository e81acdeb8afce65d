// What a test run leaves on the machine that was not there before it: processes reparented to PID 1,
// network namespaces, nftables tables, mounts under /tmp and /dev/shm, cgroups named like the tests'
// own, nspawn machines. Read from /proc, /run and /sys, and `nft` and `machinectl` where installed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/** @param {string} p */
const read = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
/** @param {string} d */
const list = (d) => {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
};
/** @param {string} cmd @param {string[]} args */
const lines = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '') : [];
};

function orphans() {
  const out = [];
  for (const pid of list('/proc').filter((n) => /^\d+$/.test(n))) {
    const stat = read(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[1] !== '1') continue; // parent PID
    const cmd = read(`/proc/${pid}/cmdline`).split('\0').filter((a) => a !== '').join(' ');
    if (cmd === '') continue; // kernel threads and zombies
    out.push(`process ${pid} (parent 1): ${cmd.slice(0, 160)}`);
  }
  return out;
}

function cgroups() {
  const out = [];
  for (const base of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd', '/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    for (const name of list(base)) if (/^(sentinel|omnimind)/.test(name) && existsSync(join(base, name, 'cgroup.procs'))) out.push(`cgroup ${join(base, name)}`);
  }
  return out;
}

function mounts() {
  return read('/proc/self/mounts').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => /^\/(tmp|dev\/shm)\//.test(m)).map((m) => `mount ${m}`);
}

/** Everything that counts as a leftover, as one line each. */
export function snapshot() {
  return [
    ...orphans(),
    ...list('/run/netns').map((n) => `netns ${n}`),
    ...lines('nft', ['list', 'tables']).map((t) => `nft ${t}`),
    ...mounts(),
    ...cgroups(),
    ...lines('machinectl', ['list', '--no-legend']).map((m) => `machine ${m}`),
  ];
}

/**
 * What is there now and was not in `before` (a PID reused by an unrelated process can show up too).
 * @param {string[]} before
 */
export function leftovers(before) {
  const had = new Set(before);
  return snapshot().filter((l) => !had.has(l));
}
