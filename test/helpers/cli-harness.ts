// Shared by the test/cli/*.test.ts files: runs the real compiled `sentinel` as a child process, or its
// entry function `runCli` in a worker thread of the test process for the many cases that only parse
// (usage errors, --help), and checks the one-line error contract (`sentinel: <code>: <message> (<where>)`, exit 1 or 2).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodePublicKey, encodeSecretKey, exitCodeFor } from '../../src/core/index.js';
import type { ErrorCode } from '../../src/core/index.js';
import type { TestKey } from './core-factory.js';
import type { CliJob, CliJobResult } from './cli-worker.js';

/** dist/src/cli/main.js, next to this compiled file's dist/test/. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** dist/src/cli/sentinel.cjs: the package's bin, which runs --help and the plain forms itself and imports main.js for the rest. */
export const BIN = fileURLToPath(new URL('../../src/cli/sentinel.cjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Non-empty stderr lines. */
  errLines: string[];
}

// Runs `[prefix...] node main.js args...` (or `entry` instead of main.js) and collects its output (bounded by a timeout).
export async function sentinel(args: string[], opts: { prefix?: string[]; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; entry?: string } = {}): Promise<CliResult> {
  const argv = [...(opts.prefix ?? []), process.execPath, opts.entry ?? CLI, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: { ...process.env, SENTINEL_DEBUG: '', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sentinel ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, stdout, stderr, errLines: stderr.split('\n').filter((l) => l.trim() !== '') };
}

let worker: Worker | null = null;
let nextJob = 0;
const pending = new Map<number, { resolve: (r: CliJobResult) => void; reject: (e: Error) => void }>();

function cliWorker(): Worker {
  if (worker !== null) return worker;
  const w = new Worker(new URL('./cli-worker.js', import.meta.url));
  w.unref(); // an idle worker never holds the test process open
  w.on('message', (r: CliJobResult) => {
    pending.get(r.id)?.resolve(r);
    pending.delete(r.id);
  });
  const fail = (e: Error): void => {
    if (worker === w) worker = null;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  w.on('error', fail);
  w.on('exit', (c) => fail(new Error(`the in-process CLI worker exited (${c})`)));
  worker = w;
  return w;
}

// Runs `sentinel args...` through its entry function (runCli) in a worker thread of this process:
// the same parsing, actions, output and exit code as the executable, without starting a process.
// For cases that need no privilege change or separate process (a prefix, a cwd): use `sentinel`.
export async function sentinelInProcess(args: string[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<CliResult> {
  const w = cliWorker();
  const id = nextJob++;
  const job: CliJob = { id, args, env: { SENTINEL_DEBUG: '', ...opts.env } };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const r = await new Promise<CliJobResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      void w.terminate();
      reject(new Error(`sentinel ${args.join(' ')} (in-process) did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    pending.set(id, {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
    w.postMessage(job);
  });
  if (r.thrown !== undefined) throw new Error(`runCli threw for sentinel ${args.join(' ')}: ${r.thrown}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, errLines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

// Ends the in-process CLI's worker thread (call from an `after` hook).
export async function closeInProcessCli(): Promise<void> {
  const w = worker;
  worker = null;
  if (w !== null) {
    w.removeAllListeners('exit');
    await w.terminate();
  }
}

function show(r: CliResult): string {
  return `exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

// Asserts success (exit 0) and nothing on stderr.
export function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `expected exit 0\n${show(r)}`);
  assert.equal(r.errLines.length, 0, `expected an empty stderr\n${show(r)}`);
}

// Asserts the failure contract: exit code of `code`, exactly one stderr line naming that code.
export function assertFails(r: CliResult, code: ErrorCode | ErrorCode[]): string {
  const codes = Array.isArray(code) ? code : [code];
  assert.equal(r.errLines.length, 1, `expected exactly one stderr line\n${show(r)}`);
  const line = r.errLines[0]!;
  const m = /^sentinel: ([a-z-]+): .+/.exec(line);
  assert.ok(m !== null, `stderr line is not "sentinel: <code>: <message>": ${line}`);
  assert.ok(codes.includes(m[1] as ErrorCode), `expected code ${codes.join(' or ')}, got ${m[1]}\n${show(r)}`);
  assert.equal(r.code, exitCodeFor(m[1] as ErrorCode), `exit code does not match ${m[1]}\n${show(r)}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without SENTINEL_DEBUG=1');
  return m[1]!;
}

// Writes a test key pair as PREFIX.key (0600) and PREFIX.pub in the project's own formats.
export function writeKeyFiles(dir: string, name: string, k: TestKey): { key: string; pub: string } {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  writeFileSync(key, encodeSecretKey(k.secret), { mode: 0o600 });
  chmodSync(key, 0o600);
  writeFileSync(pub, encodePublicKey(k.public));
  return { key, pub };
}
