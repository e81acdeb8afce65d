// Manifest parse: the one-pass canonical reader (parseManifest) against the generic route
// (JSON.parse, every rule, re-encode and compare: parseManifestGeneric) and against a bare JSON.parse
// of the same bytes (no checks at all), on manifests of 10,000 and 100,000 entries. Each figure is
// taken in a fresh process, in turns: the first parse (cold code, as in a CLI process), the median
// of 5 more (warm), and the bytes allocated by the first parse that the GC then collects.
// Usage: node dist/bench/manifest-bench.js [--runs N] [--json]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildManifest, encodeManifest, parseManifest, parseManifestGeneric, utf8Decode } from '../src/core/manifest.js';
import type { ManifestEntry } from '../src/core/manifest.js';
import { formatTable, machineLine } from './lib/hash-bench-util.js';
import { median } from './lib/process-timing.js';

const ROUTES = {
  'parseManifest (one pass)': (b: Uint8Array) => parseManifest(b),
  'parseManifestGeneric (JSON.parse + rules + re-encode)': (b: Uint8Array) => parseManifestGeneric(b),
  'JSON.parse only (no checks; peer)': (b: Uint8Array) => JSON.parse(utf8Decode(b)) as unknown,
} as const;
type Route = keyof typeof ROUTES;

interface ChildResult {
  coldCpuMs: number;
  warmCpuMs: number;
  garbageBytes: number;
}

const cpuMs = (fn: () => unknown): number => {
  const c = process.cpuUsage();
  fn();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1000;
};

// In the child: one route, one manifest file. With --expose-gc and a young generation large
// enough that nothing is collected during the parse, heap growth minus what survives is the garbage.
function child(route: Route, file: string): void {
  const bytes = new Uint8Array(readFileSync(file));
  const parse = ROUTES[route];
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc !== undefined) {
    gc();
    const keep = parse(bytes);
    const h1 = process.memoryUsage().heapUsed;
    gc();
    const h2 = process.memoryUsage().heapUsed;
    console.log(JSON.stringify({ garbageBytes: h1 - h2, kept: keep === null ? 0 : 1 }));
    return;
  }
  const coldCpuMs = cpuMs(() => parse(bytes));
  const warm = Array.from({ length: 5 }, () => cpuMs(() => parse(bytes)));
  console.log(JSON.stringify({ coldCpuMs, warmCpuMs: median(warm) }));
}

function runChild(route: Route, file: string, gcFlags: boolean): Record<string, number> {
  const flags = gcFlags ? ['--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256'] : [];
  const r = spawnSync(process.execPath, [...flags, fileURLToPath(import.meta.url), '--child', route, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child ${route} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

function manifestFile(dir: string, n: number): { file: string; bytes: number } {
  const entries: ManifestEntry[] = [];
  for (let d = 0; d < n / 100; d++) {
    const dirPath = `d${String(d).padStart(4, '0')}`;
    entries.push({ type: 'dir', path: dirPath, mode: 0o755 });
    for (let f = 0; f < 99; f++) {
      entries.push({ type: 'file', path: `${dirPath}/f${String(f).padStart(3, '0')}`, mode: 0o644, size: 9000 + f, sha256: createHash('sha256').update(`${d}/${f}`).digest('hex') });
    }
  }
  const bytes = encodeManifest(buildManifest({ vaultId: 'bench', version: 1, created: new Date(0), expires: new Date(4e12), entries }));
  const file = join(dir, `manifest-${n}.json`);
  writeFileSync(file, bytes);
  return { file, bytes: bytes.length };
}

function main(): void {
  const args = process.argv.slice(2);
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 7;
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-manifest-bench-'));
  const rows: { entries: number; bytes: number; route: Route; result: ChildResult }[] = [];
  try {
    for (const n of [10_000, 100_000]) {
      const m = manifestFile(dir, n);
      const routes = Object.keys(ROUTES) as Route[];
      const cold: number[][] = routes.map(() => []);
      const warm: number[][] = routes.map(() => []);
      for (let i = 0; i < runs; i++) {
        routes.forEach((route, k) => {
          const r = runChild(route, m.file, false);
          cold[k]!.push(r.coldCpuMs!);
          warm[k]!.push(r.warmCpuMs!);
        });
      }
      routes.forEach((route, k) => {
        const garbageBytes = runChild(route, m.file, true).garbageBytes!;
        rows.push({ entries: n, bytes: m.bytes, route, result: { coldCpuMs: median(cold[k]!), warmCpuMs: median(warm[k]!), garbageBytes } });
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (args.includes('--json')) {
    console.log(JSON.stringify({ machine: machineLine(), runs, rows }, null, 2));
    return;
  }
  console.log(`manifest-bench: ${machineLine()}; CPU ms, medians of ${runs} fresh processes taken in turns`);
  console.log(
    formatTable(
      ['entries (bytes)', 'route', 'first parse ms', 'warm parse ms', 'garbage MB'],
      rows.map((r) => [`${r.entries} (${(r.bytes / 1e6).toFixed(1)} MB)`, r.route, r.result.coldCpuMs.toFixed(1), r.result.warmCpuMs.toFixed(1), (r.result.garbageBytes / 1e6).toFixed(2)]),
      2,
    ),
  );
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) child(process.argv[childAt + 1] as Route, process.argv[childAt + 2]!);
else main();
