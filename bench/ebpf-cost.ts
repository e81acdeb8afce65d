// Cost of the probes: bpftrace RSS and CPU idle and under a fork/exit storm (~1,000 short
// processes/s for 10 s), for bpf/exit.bt + bpf/retransmit.bt as shipped (filtered in the kernel)
// and, as the peer, an exit program that sends every process exit to user space (filtered in Node).
// Usage (root, bpftrace): node dist/bench/ebpf-cost.js [--seconds 10] [--rate 1000] [--json FILE]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { createLogger } from '../src/adapters/logger.js';
import { BpftraceTracer, bpfProgramPath, ensureTracefs } from '../src/adapters/bpftrace.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const seconds = arg('seconds', 10);
const rate = arg('rate', 1000);
const jsonOut = ((): string | undefined => {
  const i = process.argv.indexOf('--json');
  return i >= 0 ? process.argv[i + 1] : undefined;
})();
const clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const log = createLogger('error');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

// RSS counts the shared LLVM/libbpf pages of every bpftrace in full; PSS splits them fairly.
function pssKiB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

const STORM = `
import os, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
n, t0 = 0, time.monotonic()
while True:
    now = time.monotonic() - t0
    if now >= secs: break
    due = n / rate
    if due > now: time.sleep(due - now)
    pid = os.posix_spawn('/bin/true', ['/bin/true'], {})
    os.waitpid(pid, 0)
    n += 1
print(n / (time.monotonic() - t0))
`;

async function storm(): Promise<number> {
  const r = await execa('/usr/bin/python3', ['-c', STORM, String(rate), String(seconds)]);
  return Number(r.stdout.trim());
}

interface Row {
  config: string;
  rssKiB: number;
  pssKiB: number;
  idleCpuPct: number;
  stormCpuPct: number;
  nodeStormCpuPct: number;
  eventsToUserSpace: number;
  stormRate: number;
}

async function measure(config: string, programs: { program: string; args: string[] }[]): Promise<Row> {
  let events = 0;
  const tracers = programs.map(
    (p, i) => new BpftraceTracer({ name: `cost-${i}`, program: p.program, args: p.args, log, onEvent: () => void events++ }),
  );
  try {
    for (const t of tracers) await t.start();
    const pids = tracers.map((t) => t.pid!);
    await sleep(1000);
    const ticks = (): number => pids.reduce((a, p) => a + cpuTicks(p), 0);
    let t0 = ticks();
    await sleep(seconds * 1000);
    const idleCpuPct = ((ticks() - t0) / clkTck / seconds) * 100;
    t0 = ticks();
    const n0 = process.cpuUsage();
    const stormRate = await storm();
    const nodeCpu = process.cpuUsage(n0);
    const stormCpuPct = ((ticks() - t0) / clkTck / seconds) * 100;
    const rss = pids.reduce((a, p) => a + rssKiB(p), 0);
    const pss = pids.reduce((a, p) => a + pssKiB(p), 0);
    return { config, rssKiB: rss, pssKiB: pss, idleCpuPct, stormCpuPct, nodeStormCpuPct: ((nodeCpu.user + nodeCpu.system) / 1e6 / seconds) * 100, eventsToUserSpace: events, stormRate };
  } finally {
    for (const t of tracers) await t.stop();
  }
}

await ensureTracefs();
const dir = mkdtempSync(join(tmpdir(), 'sentinel-cost-'));
const unfiltered = join(dir, 'exit-all.bt');
writeFileSync(
  unfiltered,
  'BEGIN { printf("ready\\n"); }\ntracepoint:sched:sched_process_exit /args->group_dead/ { printf("exit pid=%d ppid=%d code=%d ns=%llu comm=%s\\n", curtask->tgid, curtask->real_parent->tgid, curtask->exit_code, nsecs, args->comm); }\n',
);
const rows: Row[] = [];
try {
  const baselineRate = await storm();
  console.error(`storm alone: ${baselineRate.toFixed(0)} processes/s`);
  const slots = ['0', '0', '0', '0', '0', '0', '0', '0'];
  rows.push(
    await measure('exit.bt + retransmit.bt (shipped, kernel-filtered)', [
      { program: bpfProgramPath('exit.bt'), args: [String(process.pid), String(process.pid), ...slots.slice(1)] },
      { program: bpfProgramPath('retransmit.bt'), args: ['8000', '0', '0', '0'] },
    ]),
  );
  rows.push(await measure('every exit to user space (peer, not shipped)', [{ program: unfiltered, args: [] }]));
  console.log(`fork/exit storm: ${rate}/s requested for ${seconds} s; ${baselineRate.toFixed(0)}/s achieved without probes\n`);
  console.log('| probes | bpftrace RSS MiB | bpftrace PSS MiB | bpftrace CPU idle % | bpftrace CPU storm % | sentinel (Node) CPU storm % | events to user space | storm rate /s |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.config} | ${(r.rssKiB / 1024).toFixed(1)} | ${(r.pssKiB / 1024).toFixed(1)} | ${r.idleCpuPct.toFixed(2)} | ${r.stormCpuPct.toFixed(2)} | ${r.nodeStormCpuPct.toFixed(2)} | ${r.eventsToUserSpace} | ${r.stormRate.toFixed(0)} |`);
  }
  if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ baselineRate, rows }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
