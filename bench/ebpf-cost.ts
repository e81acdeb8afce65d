// Cost of the in-process eBPF engine: this Node process's CPU idle and under a fork/exit storm of
// unrelated processes (~1,000 short processes/s for 10 s), and the RSS the engine adds, with every group
// attached (exit, syscalls, retransmit, flags), one PID watched and one port counted, against the same
// process with no engine loaded (the peer, measured in the same run). Also the storm rate achieved, which
// the host-wide tracepoints could slow.
// Usage (root, the engine built): node dist/bench/ebpf-cost.js [--seconds 10] [--rate 1000] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { createLogger } from '../src/adapters/logger.js';
import { EbpfHost } from '../src/daemon/ebpf-host.js';
import { numberArg, optionalArg } from './lib/args.js';

const seconds = numberArg('seconds', 10);
const rate = numberArg('rate', 1000);
const jsonOut = optionalArg('json');
const log = createLogger('error');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssKiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
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
  addedRssKiB: number;
  idleCpuPct: number;
  stormCpuPct: number;
  recordsToUserSpace: number;
  stormRate: number;
}

const cpuPct = (u: NodeJS.CpuUsage): number => ((u.user + u.system) / 1e6 / seconds) * 100;

async function measure(config: string, engine: boolean): Promise<Row> {
  global.gc?.();
  const rss0 = rssKiB();
  const host = new EbpfHost({ log, ...(engine ? {} : { disabled: 'peer: no engine' }) });
  let records = 0;
  await host.start();
  if (engine && host.unavailable !== null) throw new Error(`the engine did not load: ${host.unavailable}`);
  for (const kind of ['exit', 'slow', 'stall-end', 'retransmit', 'flags'] as const) host.on(kind, () => void records++);
  host.watchExit(process.pid);
  host.watchPort(8000, 50);
  try {
    await sleep(1000);
    const addedRssKiB = rssKiB() - rss0;
    let c0 = process.cpuUsage();
    await sleep(seconds * 1000);
    const idleCpuPct = cpuPct(process.cpuUsage(c0));
    c0 = process.cpuUsage();
    const stormRate = await storm();
    const stormCpuPct = cpuPct(process.cpuUsage(c0));
    return { config, addedRssKiB, idleCpuPct, stormCpuPct, recordsToUserSpace: records, stormRate };
  } finally {
    await host.close();
  }
}

const rows: Row[] = [];
rows.push(await measure('no engine (peer)', false));
rows.push(await measure('engine: exit, syscalls, retransmit, flags; 1 PID, 1 port', true));
console.log(`fork/exit storm: ${rate}/s requested for ${seconds} s\n`);
console.log('| configuration | RSS added MiB | Node CPU idle % | Node CPU storm % | records to user space | storm rate /s |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.config} | ${(r.addedRssKiB / 1024).toFixed(1)} | ${r.idleCpuPct.toFixed(2)} | ${r.stormCpuPct.toFixed(2)} | ${r.recordsToUserSpace} | ${r.stormRate.toFixed(0)} |`);
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ rows }, null, 2));
