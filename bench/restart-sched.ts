// Where the CPUs went while the backend started, restarted (c) against cold (d) (and held (h)): reads the
// --json of `backend-restart --paired` and the perf data of sched tracepoints recorded around that run, and
// for each phase of each start — kill (or start) → exec, exec → READY=1 (systemd's timestamps,
// CLOCK_MONOTONIC), READY=1 → the first reply (the probe's mark, with --probe) — sums the CPU time of every
// task by who it is: the new backend, the sentinel (the node process the killed backend wakes first: the
// eBPF exit event's ring buffer) and the processes it started, the load client (the node process, other than
// the sentinel, with the most CPU over the run), the bench's driver (the other node processes), PID 1 of the
// container (comm "systemd"), journald, kernel threads, the rest by name, and both CPUs idle; the sentinel's
// wake-ups; the new backend's time runnable but not running; and per pair (c) − (d) of the sentinel's CPU, the
// load client's and the backend's wait. For each kill also the time until the killed backend is dead (its
// last switch-out as a zombie: the kernel's teardown of it, its memory included). Record it so:
//   perf record -k CLOCK_MONOTONIC -a -e sched:sched_switch -e sched:sched_wakeup -e sched:sched_wakeup_new \
//     -e sched:sched_process_exec -e sched:sched_process_fork -o run.perf -- node dist/bench/backend-restart.js --paired --probe --json run.json
//   node dist/bench/restart-sched.js run.json run.perf
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { spread } from './lib/restart-pairs.js';

interface Kill { killUs: number; execUs: number; readyUs: number; probe?: { reply?: number[] } }
const [jsonPath, perfPath] = process.argv.slice(2);
if (jsonPath === undefined || perfPath === undefined) {
  console.error('usage: node dist/bench/restart-sched.js RESULT.json PERF.data');
  process.exit(2);
}
const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as { rows: { name: string; perKill: Kill[] }[] };
const peers = ['c', 'd', 'h'].map((name) => ({ name, kills: result.rows.find((r) => r.name === name)?.perKill ?? [] })).filter((p) => p.kills.length > 0);
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
const tg = (tid: number): number => tgidOf.get(tid) ?? tid;
// the sentinel: the node process each killed backend woke first, by majority
const votes = new Map<number, number>();
for (const k of peers[0]?.kills ?? []) {
  const w = woke.find((x) => x.t >= k.killUs / 1e6 && x.t <= k.killUs / 1e6 + 0.1 && x.by.startsWith('python') && x.comm === 'node');
  if (w !== undefined) votes.set(tg(w.tid), (votes.get(tg(w.tid)) ?? 0) + 1);
}
const sentinel = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? -1;
// Who a process is: inside the container (a descendant of systemd-nspawn) or the VM's other work; in the
// container the load client is the node process the bench's driver (another node process) started.
const fileOf = new Map<number, string>();
for (const e of execs) fileOf.set(e.pid, e.file);
const inside = new Map<number, boolean>();
const isInside = (g: number): boolean => {
  const known = inside.get(g);
  if (known !== undefined) return known;
  let at: number | undefined = g;
  let found = false;
  for (let i = 0; i < 64 && at !== undefined; i++) {
    if (fileOf.get(at) === 'systemd-nspawn') {
      found = true;
      break;
    }
    const p = parentOf.get(at);
    at = p === undefined ? undefined : tg(p);
  }
  inside.set(g, found);
  return found;
};
const parentTg = (g: number): number | undefined => {
  const p = parentOf.get(g);
  return p === undefined ? undefined : tg(p);
};
const isNode = (g: number): boolean => fileOf.get(g) === 'node';
const isDriver = (g: number): boolean => isInside(g) && isNode(g) && g !== sentinel && !(isNode(parentTg(g) ?? -1) && isInside(parentTg(g) ?? -1));
const isLoad = (g: number): boolean => isInside(g) && isNode(g) && g !== sentinel && !isDriver(g) && isDriver(parentTg(g) ?? -1);
const loadClients = new Set([...fileOf.keys()].filter(isLoad));
const who = (r: { tid: number; comm: string }, own: (tid: number) => boolean): string => {
  if (r.tid === 0) return 'idle (both CPUs)';
  if (own(r.tid)) return 'the new backend';
  const g = tg(r.tid);
  if (g === sentinel) return 'the sentinel';
  const p = parentTg(g);
  if (p !== undefined && p === sentinel) return "the sentinel's processes";
  if (/^(kworker|ksoftirqd|rcu_|migration|kcompactd|khugepaged|jbd2|kswapd|irq\/)/.test(r.comm)) return 'kernel threads';
  if (!isInside(g)) return 'outside the container';
  if (loadClients.has(g)) return 'the load client';
  if (isDriver(g)) return "the bench's driver";
  if (p !== undefined && isDriver(p)) return "the driver's processes";
  if (r.comm === 'systemd') return 'PID 1 (systemd)';
  return r.comm;
};

type Phase = { name: string; from: (k: Kill) => number | null; to: (k: Kill) => number | null };
const replyUs = (k: Kill): number | null => (k.probe?.reply?.[0] ?? null);
const PHASES: Phase[] = [
  { name: 'kill → exec', from: (k) => k.killUs, to: (k) => k.execUs },
  { name: 'exec → READY=1', from: (k) => k.execUs, to: (k) => k.readyUs },
  { name: 'READY=1 → first reply', from: (k) => k.readyUs, to: replyUs },
];
/** Per window: CPU s by who; the sentinel's switch-ins; the new backend runnable, not running, s. */
function window(k: Kill, ph: Phase): { cpu: Map<string, number>; span: number; wakes: number; wait: number } | null {
  const f = ph.from(k);
  const t = ph.to(k);
  if (f === null || t === null || t <= f) return null;
  const from = f / 1e6;
  const to = t / 1e6;
  // the new backend: the first python started in the container from the exec on, and the threads it forks
  const backend = execs.find((e) => e.t >= k.execUs / 1e6 - 0.002 && e.file.startsWith('python') && isInside(e.pid))?.pid;
  const own = (tid: number): boolean => backend !== undefined && (tg(tid) === backend || tid === backend || parentOf.get(tid) === backend);
  const cpu = new Map<string, number>();
  for (const r of runs) {
    const a = Math.max(r.from, from);
    const b = Math.min(r.to, to);
    if (b > a) cpu.set(who(r, own), (cpu.get(who(r, own)) ?? 0) + b - a);
  }
  let wakes = 0;
  for (const [tid, ins] of switchIn) if (tg(tid) === sentinel) wakes += ins.filter((x) => x >= from && x < to).length;
  let wait = 0;
  for (const [tid, times] of runnable) {
    if (!own(tid)) continue;
    const ins = switchIn.get(tid) ?? [];
    for (const w of times.filter((x) => x >= from && x <= to)) wait += Math.min(ins.find((x) => x >= w) ?? to, to) - w;
  }
  return { cpu, span: to - from, wakes, wait };
}

const perPeer = new Map<string, Map<string, { sentinel: number; load: number; wait: number }[]>>();
for (const { name, kills } of peers) {
  const phases = new Map<string, { sentinel: number; load: number; wait: number }[]>();
  perPeer.set(name, phases);
  for (const ph of PHASES) {
    const cpu = new Map<string, number>();
    let span = 0;
    let wakes = 0;
    let wait = 0;
    let n = 0;
    const each: { sentinel: number; load: number; wait: number }[] = [];
    for (const k of kills) {
      const w = window(k, ph);
      each.push(w === null ? { sentinel: NaN, load: NaN, wait: NaN } : { sentinel: (w.cpu.get('the sentinel') ?? 0) + (w.cpu.get("the sentinel's processes") ?? 0), load: w.cpu.get('the load client') ?? 0, wait: w.wait });
      if (w === null) continue;
      n++;
      span += w.span;
      wakes += w.wakes;
      wait += w.wait;
      for (const [key, v] of w.cpu) cpu.set(key, (cpu.get(key) ?? 0) + v);
    }
    phases.set(ph.name, each);
    if (n === 0) continue;
    const top = [...cpu].sort((a, b) => b[1] - a[1]).slice(0, 11).map(([key, v]) => `${key} ${ms(v / n)}`).join(', ');
    console.log(`(${name}) ${ph.name}, ${String(n)} windows, mean ${ms(span / n)} ms: CPU ms per window: ${top}; the sentinel's switch-ins ${(wakes / n).toFixed(1)}; the new backend runnable, not running ${ms(wait / n)} ms`);
  }
  const started = new Map<string, number>();
  for (const k of kills) for (const e of execs.filter((x) => x.t >= k.killUs / 1e6 && x.t <= (replyUs(k) ?? k.readyUs) / 1e6)) started.set(e.file, (started.get(e.file) ?? 0) + 1);
  console.log(`    (${name}) processes started per start, kill → first reply: ${[...started].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([key, v]) => `${key} ${(v / Math.max(1, kills.length)).toFixed(2)}`).join(', ') || 'none'}`);
}
const c = perPeer.get('c');
const d = perPeer.get('d');
if (c !== undefined && d !== undefined) {
  for (const ph of PHASES) {
    const a = c.get(ph.name) ?? [];
    const b = d.get(ph.name) ?? [];
    const n = Math.min(a.length, b.length);
    const diff = (f: (x: { sentinel: number; load: number; wait: number }) => number): string => {
      const s = spread(Array.from({ length: n }, (_, i) => (f(a[i]!) - f(b[i]!)) * 1e3));
      return `${s.median.toFixed(1)} (95 % interval ${s.ciLow.toFixed(1)} to ${s.ciHigh.toFixed(1)})`;
    };
    console.log(`per pair (c) − (d), ${ph.name}, ms: the sentinel's CPU ${diff((x) => x.sentinel)}; the load client's ${diff((x) => x.load)}; the new backend's wait for a CPU ${diff((x) => x.wait)}`);
  }
}
const killed = peers.find((p) => p.name === 'c')?.kills ?? [];
const dead = killed.map((k) => deaths.filter((x) => x.comm.startsWith('python') && x.t >= k.killUs / 1e6 && x.t <= k.killUs / 1e6 + 0.2).map((x) => x.t - k.killUs / 1e6)).filter((x) => x.length > 0).map((x) => Math.max(...x));
console.log(`(c) kill → the killed backend dead (its last switch-out as a zombie), ${String(dead.length)} kills: median ${ms(median(dead))} ms (min ${ms(Math.min(...dead))}, max ${ms(Math.max(...dead))}); sentinel ${String(sentinel)}, load clients ${[...loadClients].join(' ')}`);
