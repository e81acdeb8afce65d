// `sentinel reload --socket PATH`: the unit's ExecReload=. Asks the running daemon to re-read its
// configuration and waits for the verdict, so `systemctl reload` fails when the new file is refused
// (docs/DAEMON.md#reload).
import type { DaemonReply } from './daemon-reply.js';
import { reportFailure } from './failure.js';

/** Codes of a reload that never got to read the configuration (the daemon was busy, starting, or the request was bad). */
const NOT_A_CONFIG_VERDICT = new Set(['unavailable', 'busy', 'usage', 'too-large', 'internal']);

// Why: exit 0 when the new configuration is in force, EXIT_CONFIG (3) when it was refused, 2 when the daemon could not be asked.
export async function runReload(opts: { socket: string; timeout: number; json?: boolean }): Promise<number> {
  const { sendRequest } = await import('../adapters/control-client.js');
  const { daemonError } = await import('./daemon-reply.js');
  const { EXIT_CONFIG } = await import('../daemon/config.js');
  const reply = (await sendRequest(opts.socket, { op: 'reload' }, { timeoutMs: opts.timeout })) as DaemonReply<{ ignored?: string[] }>;
  if (reply.ok !== true || reply.result === undefined) {
    const err = daemonError(reply.error, opts.socket, 'malformed reply');
    const code = reportFailure(err);
    return reply.error?.code !== undefined && !NOT_A_CONFIG_VERDICT.has(reply.error.code) ? EXIT_CONFIG : code;
  }
  const ignored = reply.result.ignored ?? [];
  if (opts.json === true) process.stdout.write(`${JSON.stringify({ ok: true, ...reply.result })}\n`);
  else process.stdout.write(`configuration reloaded${ignored.length > 0 ? `; these changes wait for a restart: ${ignored.join(', ')}` : ''}\n`);
  return 0;
}
