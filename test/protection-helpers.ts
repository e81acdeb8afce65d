// Shared pieces of the protection tests: unique names, child cleanup, bounded polls, a silent log.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ProtectionLog } from '../src/daemon/protection/index.js';

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

// A bounded poll for states with no event to wait on (a score in /proc); fails with what it waited for.
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Tests that do not look at the log.
export const quietLog: ProtectionLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
