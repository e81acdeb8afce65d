// Shared pieces of the protection tests: unique names, child cleanup, bounded polls, a silent log
// and a recording one, the cgroup v2 gate.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ProtectionLog } from '../../src/daemon/protection/index.js';
import { waitFor as pollUntil } from './wait.js';
import { detectCgroupLayout } from '../../src/adapters/cgroup-layout.js';
import { isRoot, needs } from './env.js';

// Two test files run in parallel: every cgroup and token gets the pid and random bytes.
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

// Kill our children and wait until they are reaped, so their cgroups can be removed.
export async function killAndReap(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGKILL');
      await exited;
    }),
  );
}

// The shared bounded poll; a probe that throws (a /proc entry not there yet) counts as "not yet".
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return pollUntil(what, timeoutMs, () => probe().catch(() => undefined), 25);
}

// Tests that do not look at the log.
export const quietLog: ProtectionLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  msg: string;
}

// A log that keeps every line, for tests that look at what was said.
export function recordingLog(): { log: ProtectionLog; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    log: {
      info: (_o, msg) => lines.push({ level: 'info', msg }),
      warn: (_o, msg) => lines.push({ level: 'warn', msg }),
      error: (_o, msg) => lines.push({ level: 'error', msg }),
    },
  };
}

// Root and a cgroup2 mount, or the test is skipped (fails in CI).
export async function v2Ready(t: Parameters<typeof needs>[0]): Promise<boolean> {
  if (needs(t, isRoot(), 'root')) return false;
  const layout = await detectCgroupLayout();
  return !needs(t, layout.v2 !== null, 'a cgroup2 mount');
}
