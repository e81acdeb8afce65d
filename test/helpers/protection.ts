// Shared pieces of the protection tests: unique names, child cleanup, bounded polls, a silent log.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ProtectionLog } from '../../src/daemon/protection/index.js';
import { waitFor as pollUntil } from './wait.js';

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
