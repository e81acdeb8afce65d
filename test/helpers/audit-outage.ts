// What the audit log's fault tests (a full disk, flushes that fail) share: the daemon's status over its
// socket, and the end of an outage: healthy again, the log writable with nothing held, and a deploy that
// goes live audited.
import assert from 'node:assert/strict';
import { sendRequest } from '../../src/adapters/control-client.js';
import { waitFor } from './wait.js';

export interface DaemonStatus {
  vault: { version: number };
  watchdog: { healthy: boolean; reason: string | null };
  counters: { rejects: number; rejectsByCode: Record<string, number> };
  audit: { writable: boolean; held: number; dropped: number; error: string | null };
}

export interface Reply<T> {
  ok: boolean;
  result?: T;
  error?: { code: string; where?: string; message?: string };
}

export async function daemonStatus(socket: string): Promise<DaemonStatus> {
  const r = (await sendRequest(socket, { op: 'status' }, { timeoutMs: 10_000 })) as Reply<DaemonStatus>;
  assert.equal(r.ok, true);
  return r.result!;
}

/** Waits (`what`) for the daemon to be healthy with the audit log writable and nothing held; then `bundlePath` must deploy, audited. */
export async function healthyThenDeploys(socket: string, bundlePath: string, what: string, timeoutMs: number): Promise<void> {
  const s = await waitFor(what, timeoutMs, async () => {
    const now = await daemonStatus(socket);
    return now.watchdog.healthy ? now : null;
  });
  assert.equal(s.audit.writable, true);
  assert.equal(s.audit.held, 0);
  const deployed = (await sendRequest(socket, { op: 'deploy', bundlePath }, { timeoutMs: 30_000 })) as Reply<{ version: number; audited: boolean }>;
  assert.equal(deployed.ok, true, JSON.stringify(deployed));
  assert.equal(deployed.result?.audited, true);
}
