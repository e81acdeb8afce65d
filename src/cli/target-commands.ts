// `sentinel target reset NAME --socket PATH`: an operator gives a target a fresh restart budget through
// the running daemon; a failed or down target is recovered, and by default the command waits for it
// to be running again (docs/EBPF.md#recovery).
import { SentinelError } from '../core/errors.js';
import type { DaemonReply } from './daemon-reply.js';

/** Options of `target reset`. */
export interface TargetResetFlags {
  socket: string;
  /** How long to wait for the daemon's reply, and then for the target to be running, ms. */
  timeout: number;
  wait: boolean;
  json?: boolean;
}

interface ResetResult {
  target: string;
  previousState: string;
  action: 'recovering' | 'budget reset';
  state: string;
}

interface TargetView {
  name: string;
  state: string;
  pid: number | null;
  restarts: number;
  failedReason: string | null;
}

/** How often the daemon is asked about the target while waiting for it, ms. */
const POLL_MS = 200;

async function targetNow(socket: string, name: string, timeoutMs: number): Promise<TargetView> {
  const { sendRequest } = await import('../adapters/control-client.js');
  const { daemonError } = await import('./daemon-reply.js');
  const reply = (await sendRequest(socket, { op: 'status' }, { timeoutMs })) as DaemonReply<{ components?: { targets?: TargetView[] } }>;
  if (reply.ok !== true || reply.result === undefined) throw daemonError(reply.error, socket, 'malformed reply');
  const found = reply.result.components?.targets?.find((t) => t.name === name);
  if (found === undefined) throw new SentinelError('not-found', `the daemon no longer reports a target named "${name}"`, { where: 'target' });
  return found;
}

// Why: "reset" is only done when the target runs again: a recovery that fails once more is the
// operator's to know at once, with the daemon's reason, not a silent exit 0.
async function waitRunning(opts: TargetResetFlags, name: string, deadline: number): Promise<TargetView> {
  for (;;) {
    const t = await targetNow(opts.socket, name, Math.max(1000, deadline - Date.now()));
    if (t.state === 'running') return t;
    if (t.state === 'failed' || t.state === 'stopped') throw new SentinelError('unavailable', `target ${t.state} again after the reset: ${t.failedReason ?? 'no reason given'}`, { where: name });
    if (Date.now() >= deadline) throw new SentinelError('unavailable', `target not running within ${String(opts.timeout)} ms of the reset (state ${t.state}${t.failedReason === null ? '' : `: ${t.failedReason}`})`, { where: name });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// Why: exit 0 once reset (and, with the default --wait, running); 4 for an unknown target (as `trace`);
// 2 for an unreachable daemon or a target that does not come back in time.
export async function runTargetReset(name: string, opts: TargetResetFlags): Promise<number> {
  try {
    return await resetAndWait(name, opts);
  } catch (e) {
    const { targetCommandFailure } = await import('./exit-codes.js');
    return targetCommandFailure(e);
  }
}

async function resetAndWait(name: string, opts: TargetResetFlags): Promise<number> {
  const { sendRequest } = await import('../adapters/control-client.js');
  const { daemonError } = await import('./daemon-reply.js');
  const deadline = Date.now() + opts.timeout;
  const reply = (await sendRequest(opts.socket, { op: 'target-reset', name }, { timeoutMs: opts.timeout })) as DaemonReply<ResetResult>;
  if (reply.ok !== true || reply.result === undefined) throw daemonError(reply.error, opts.socket, 'malformed reply');
  const r = reply.result;
  const final = r.action === 'recovering' && opts.wait ? await waitRunning(opts, name, deadline) : null;
  if (opts.json === true) {
    process.stdout.write(`${JSON.stringify({ ok: true, ...r, ...(final === null ? {} : { state: final.state, pid: final.pid, restarts: final.restarts }) })}\n`);
    return 0;
  }
  const line =
    r.action === 'budget reset'
      ? `${name}: restart budget reset (${r.previousState}; nothing to recover)`
      : final === null
        ? `${name}: restart budget reset; recovery started (was ${r.previousState})`
        : `${name}: restart budget reset; ${r.previousState} → running, pid ${String(final.pid)}`;
  process.stdout.write(`${line}\n`);
  return 0;
}
