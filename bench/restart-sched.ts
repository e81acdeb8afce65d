// Where the CPUs went while the backend started, restarted (c) against cold (d): reads the --json of
// `backend-restart --paired` and the perf data of sched tracepoints recorded around that run, and for
// each window from the new process's exec to its READY=1 (systemd's timestamps, CLOCK_MONOTONIC) sums
// the CPU time of every task by name (the new backend apart), the idle time of both CPUs, the new
// backend's time runnable but not running, and the processes started in the window (by name, and by
// parent); for each kill, the time from the kill until the killed backend is dead (its last switch-out
// as a zombie: the kernel's teardown of it, its memory included). The sentinel is the node process the
// killed backend wakes first (the eBPF exit event's ring buffer, before the process closes its sockets):
// its own CPU and its child processes' are summed apart. Record it so:
//   perf record -k CLOCK_MONOTONIC -a -e sched:sched_switch -e sched:sched_wakeup -e sched:sched_wakeup_new \
//     -e sched:sched_process_exec -e sched:sched_process_fork -o run.perf -- node dist/bench/backend-restart.js --paired --json run.json
//   node dist/bench/restart-sched.js run.json run.perf
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface Kill { killUs: number; execUs: number; readyUs: number }
const [jsonPath, perfPath] = process.argv.slice(2);
if (jsonPath === undefined || perfPath === undefined) {
  console.error('usage: node dist/bench/restart-sched.js RESULT.json PERF.data');
  process.exit(2);
}
const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as { rows: { name: string; perKill: Kill[] }[] };
const peers = ['c', 'd'].map((name) => ({ name, kills: result.rows.find((r) => r.name === name)?.perKill ?? [] }));
const script = execFileSync('perf', ['script', '-i', perfPath, '--ns', '-F', 'comm,pid,tid,cpu,time,event,trace'], { encoding: 'utf8', maxBuffer: 4 << 30 });

const LINE = /^\s*(.+?)\s+(\d+)\/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:(\w+):\s*(.*)$/;
const runs: { from: number; to: number; tid: number; comm: string }[] = [];
const running = new Map<number, { tid: number; comm: string; since: number }>();
const tgidOf = new Map<number, number>();
const parentOf = new Map<number, number>();
const execs: { t: number; pid: number; file: string }[] = [];
const runnable = new Map<number, number[]>(); // tid -> times it became runnable (woken, or preempted)
const switchIn = new Map<number, number[]>();
const deaths: { t: number; comm: string }[] = [];
const woke: { t: number; by: string; tid: number; comm: string }[] = [];
const push = <K, V>(m: Map<K, V[]>, k: K, v: V): void => void (m.get(k) ?? m.set(k, []).get(k)!).push(v);
for (const line of script.split('\n')) {
  const m = LINE.exec(line);
  if (m === null) continue;
  const [, , pid, tid, cpu, time, event, rest] = m as unknown as [string, string, string, string, string, string, string, string];
  const t = Number(time);
  tgidOf.set(Number(tid), Number(pid));
  if (event === 'sched_switch') {
    const s = /prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)/.exec(rest);
    if (s === null) continue;
    const was = running.get(Number(cpu));
    if (was !== undefined) runs.push({ from: was.since, to: t, tid: was.tid, comm: was.comm });
    running.set(Number(cpu), { tid: Number(s[5]), comm: s[4] ?? '', since: t });
    if ((s[3] ?? '').startsWith('R')) push(runnable, Number(s[2]), t);
    if (/^[XZ]/.test(s[3] ?? '')) deaths.push({ t, comm: s[1] ?? '' });
    push(switchIn, Number(s[5]), t);
  } else if (event === 'sched_wakeup' || event === 'sched_wakeup_new') {
    const w = /comm=(.*?) pid=(\d+)/.exec(rest);
    if (w !== null) push(runnable, Number(w[2]), t);
    if (w !== null) woke.push({ t, by: m[1] ?? '', tid: Number(w[2]), comm: w[1] ?? '' });
  } else if (event === 'sched_process_exec') {
    const e = /filename=(\S+) pid=(\d+)/.exec(rest);
    if (e !== null) execs.push({ t, pid: Number(e[2]), file: (e[1] ?? '').split('/').pop() ?? '' });
  } else if (event === 'sched_process_fork') {
    const f = /pid=(\d+) child_comm=.*? child_pid=(\d+)/.exec(rest);
    if (f !== null) parentOf.set(Number(f[2]), Number(pid));
  }
}

const ms = (s: number): string => (s * 1e3).toFixed(1);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
// the sentinel: the node process each killed backend woke first, by majority
const votes = new Map<number, number>();
for (const k of peers[0]!.kills) {
  const w = woke.find((x) => x.t >= k.killUs / 1e6 && x.t <= k.killUs / 1e6 + 0.1 && x.by.startsWith('python') && x.comm === 'node');
  if (w !== undefined) votes.set(tgidOf.get(w.tid) ?? w.tid, (votes.get(tgidOf.get(w.tid) ?? w.tid) ?? 0) + 1);
}
const sentinel = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? -1;
const sentinelOwn = (tid: number): 'self' | 'child' | null => {
  const g = tgidOf.get(tid) ?? tid;
  if (g === sentinel) return 'self';
  const p = parentOf.get(g);
  return p !== undefined && (tgidOf.get(p) ?? p) === sentinel ? 'child' : null;
};
for (const { name, kills } of peers) {
  const cpu = new Map<string, number>();
  const started = new Map<string, number>();
  const byParent = new Map<string, number>();
  let wait = 0;
  let span = 0;
  for (const k of kills) {
    const from = k.execUs / 1e6;
    const to = k.readyUs / 1e6;
    span += to - from;
    // the new backend: the first python started from the exec on, and the threads it forks
    const backend = execs.find((e) => e.t >= from - 0.002 && e.file.startsWith('python'))?.pid;
    const own = (tid: number): boolean => backend !== undefined && (tgidOf.get(tid) === backend || tid === backend || parentOf.get(tid) === backend);
    for (const r of runs) {
      const a = Math.max(r.from, from);
      const b = Math.min(r.to, to);
      if (b <= a) continue;
      const of = sentinelOwn(r.tid);
      const key = r.tid === 0 ? 'idle (both CPUs)' : own(r.tid) ? 'the new backend' : of === 'self' ? 'the sentinel' : of === 'child' ? "the sentinel's processes" : r.comm;
      cpu.set(key, (cpu.get(key) ?? 0) + b - a);
    }
    for (const [tid, times] of runnable) {
      if (!own(tid)) continue;
      const ins = switchIn.get(tid) ?? [];
      for (const w of times.filter((x) => x >= from && x <= to)) wait += Math.min(ins.find((x) => x >= w) ?? to, to) - w;
    }
    for (const e of execs.filter((x) => x.t >= from && x.t <= to)) {
      started.set(e.file, (started.get(e.file) ?? 0) + 1);
      if (e.file === 'systemctl') {
        const p = sentinelOwn(e.pid) === 'child' ? 'systemctl by the sentinel' : 'systemctl by others (the bench)';
        byParent.set(p, (byParent.get(p) ?? 0) + 1);
      }
    }
  }
  const n = Math.max(1, kills.length);
  const top = [...cpu].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `${k} ${ms(v / n)}`).join(', ');
  console.log(`(${name}) ${String(kills.length)} windows exec → READY=1, mean ${ms(span / n)} ms: CPU ms per window: ${top}; the new backend runnable but not running ${ms(wait / n)} ms`);
  console.log(`    processes started per window: ${[...started].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${(v / n).toFixed(2)}`).join(', ')}; ${[...byParent].map(([k, v]) => `${k} ${(v / n).toFixed(2)}`).join(', ')}`);
}
const c = peers[0]!.kills;
const dead = c.map((k) => deaths.filter((d) => d.comm.startsWith('python') && d.t >= k.killUs / 1e6 && d.t <= k.killUs / 1e6 + 0.2).map((d) => d.t - k.killUs / 1e6)).filter((d) => d.length > 0).map((d) => Math.max(...d));
console.log(`(c) kill → the killed backend dead (its last switch-out as a zombie), ${String(dead.length)} kills: median ${ms(median(dead))} ms (min ${ms(Math.min(...dead))}, max ${ms(Math.max(...dead))})`);
