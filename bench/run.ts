// `npm run bench [-- NAME...]`: runs every benchmark of bench/ one after another (they measure
// against peers in the same run, so running two at once would skew both) and prints their tables.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES = [
  { name: 'hash', file: 'hash-bench.js', what: 'vault verify work (hash + flags) vs sha256sum, openssl pair, aide' },
  { name: 'deploy', file: 'deploy-bench.js', what: 'live-unsealed window and whole deploy vs tar + sha256sum -c + chattr -R' },
  { name: 'daemon-latency', file: 'daemon-latency.js', what: 'tamper-to-detected and tamper-to-healed latency' },
  { name: 'daemon-idle', file: 'daemon-idle.js', what: 'idle daemon RSS/CPU guarding 10,000 files vs idle node' },
  { name: 'ebpf-latency', file: 'ebpf-latency.js', what: 'exit-to-recovery latency: eBPF vs /proc poll vs 1 s HTTP health check' },
  { name: 'ebpf-cost', file: 'ebpf-cost.js', what: 'eBPF engine: RSS added, Node CPU idle and under a fork/exit storm vs no engine' },
  { name: 'guardian-footprint', file: 'guardian-footprint.js', what: 'whole guardian (daemon + every child but the target) with one target and every detector on: RSS, CPU idle and under a fork/exit storm, engine attach time, vs idle node' },
  { name: 'ebpf-fast-kill', file: 'ebpf-fast-kill.js', what: 'pidFile target killed 5-45 ms after each restart, 20 kills: SIGKILL → action, engine vs /proc poll' },
  { name: 'stall-latency', file: 'stall-latency.js', what: 'blocked asyncio loop → stall reported, over the threshold: eBPF loop state vs /proc/PID/syscall poll' },
  { name: 'manifest', file: 'manifest-bench.js', what: 'manifest parse: one-pass reader vs generic route vs bare JSON.parse, cold and warm, garbage' },
  { name: 'control', file: 'control-bench.js', what: 'status with 64 idle clients; daemon RSS under 24 clients × 64 MiB without a newline, and 60 s later' },
  { name: 'backend-restart', file: 'backend-restart.js', what: 'requests lost and recovery gap over 20 SIGKILLs of the backend under load, in nspawn: systemd RestartSec=100ms vs sentinel vs sentinel + held socket, against the backend\'s own cold start and with the former stop hook' },
  { name: 'cli', file: 'cli-bench.js', what: 'whole-process vault verify, vault status, --help and deploy vs openssl pair, node -e 0, tar + sha256sum -c + chattr -R' },
];

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !BENCHES.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const b of BENCHES.filter((x) => wanted.length === 0 || wanted.includes(x.name))) {
  console.log(`\n=== ${b.name}: ${b.what} ===`);
  const r = spawnSync(process.execPath, [join(here, b.file)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench: ${b.name} exited with ${r.status ?? r.signal}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
