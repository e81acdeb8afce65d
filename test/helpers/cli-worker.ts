// The thread behind `sentinelInProcess` (cli-harness.ts): runs `runCli`, the CLI's entry function,
// once per message and answers with its exit code and everything it wrote to stdout and stderr.
// A worker thread has its own process.stdout/stderr objects and its own copy of process.env, so the
// capture and the per-case environment touch nothing of the test process (nor its test reporter).
import { parentPort } from 'node:worker_threads';
import { CLI } from './cli-harness.js';
import { setJsonMode } from '../../src/cli/failure.js';
import { runCli } from '../../src/cli/program.js';

/** One CLI run asked for by the test thread. */
export interface CliJob {
  id: number;
  args: string[];
  env: Record<string, string | undefined>;
}

/** Its outcome, as `sentinel` would have given it as a process. */
export interface CliJobResult {
  id: number;
  code: number;
  stdout: string;
  stderr: string;
  /** Set when runCli itself threw (it must not: every failure is an exit code). */
  thrown?: string;
}

let out = '';
let err = '';

function capture(append: (s: string) => void): typeof process.stdout.write {
  return ((chunk: string | Uint8Array, encOrCb?: BufferEncoding | ((e?: Error | null) => void), cb?: (e?: Error | null) => void): boolean => {
    append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const done = typeof encOrCb === 'function' ? encOrCb : cb;
    if (done !== undefined) queueMicrotask(() => done(null));
    return true;
  });
}
process.stdout.write = capture((s) => (out += s));
process.stderr.write = capture((s) => (err += s));

async function run(job: CliJob): Promise<CliJobResult> {
  out = '';
  err = '';
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(job.env)) {
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  // What a fresh process starts with: no --json promise yet, no exit code set by an earlier command.
  setJsonMode(false);
  process.exitCode = undefined;
  try {
    const code = await runCli([process.execPath, CLI, ...job.args]);
    return { id: job.id, code, stdout: out, stderr: err };
  } finally {
    process.exitCode = undefined;
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

parentPort?.on('message', (job: CliJob) => {
  void run(job).then(
    (r) => parentPort?.postMessage(r),
    (e: unknown) => parentPort?.postMessage({ id: job.id, code: -1, stdout: out, stderr: err, thrown: e instanceof Error ? (e.stack ?? e.message) : String(e) } satisfies CliJobResult),
  );
});
