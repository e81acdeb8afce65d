// systemd through `systemctl`, from this one file: restart a unit, read its MainPID, start a slice,
// set its properties, reload unit files. Every call is bounded and a failure names the command.
import { SentinelError } from '../core/errors.js';
import { runCommand } from './process.js';

/** Bound of the quick queries (show, start, set-property, daemon-reload), ms. */
export const SYSTEMCTL_TIMEOUT_MS = 15_000;

// Why: one error shape for every systemctl verb: "access denied" is not-permitted, the rest unavailable.
async function systemctl(args: readonly string[], where: string, timeoutMs = SYSTEMCTL_TIMEOUT_MS): Promise<string> {
  const r = await runCommand(['systemctl', ...args], { timeoutMs });
  if (!r.ok) {
    const msg = r.timedOut ? `timed out after ${timeoutMs} ms` : (r.stderr || r.stdout || r.message || `exit ${r.exitCode ?? 'unknown'}`).trim();
    const code = r.startError === 'ENOENT' ? 'not-found' : /access denied|not permitted|permission/i.test(msg) ? 'not-permitted' : 'unavailable';
    throw new SentinelError(code, `systemctl ${args.join(' ')} failed: ${msg}`, { where });
  }
  return r.stdout;
}

// Why: systemd knows how to stop and start its unit; we only ask it to, at once (docs/EBPF.md#recovery).
export async function restartUnit(unit: string, timeoutMs = 60_000): Promise<{ ms: number }> {
  const t0 = performance.now();
  await systemctl(['restart', '--', unit], unit, timeoutMs);
  return { ms: performance.now() - t0 };
}

// Why: a unit target's process is systemd's MainPID; 0 means the unit has no running main process.
export async function mainPidOfUnit(unit: string): Promise<number> {
  const out = await systemctl(['show', '-p', 'MainPID', '--value', '--', unit], unit);
  const n = Number(out.trim());
  if (!Number.isInteger(n) || n < 0) throw new SentinelError('internal', `systemctl printed no MainPID: ${JSON.stringify(out.slice(0, 40))}`, { where: unit });
  return n;
}

// Why: under systemd the protection slice is a unit; starting it makes systemd create its cgroup (docs/PROTECTION.md).
export async function startUnit(unit: string): Promise<void> {
  await systemctl(['start', '--', unit], unit);
}

// Why: MemoryLow=/MemoryMin= set through systemd stay set; written behind its back they would be undone.
export async function setUnitProperties(unit: string, properties: Record<string, string>): Promise<void> {
  await systemctl(['set-property', '--runtime', unit, ...Object.entries(properties).map(([k, v]) => `${k}=${v}`)], unit);
}

// Why: `install-units` makes systemd read the unit files it just wrote; a host without systemd is not an error.
export async function daemonReload(): Promise<boolean> {
  const r = await runCommand(['systemctl', 'daemon-reload'], { timeoutMs: 30_000 });
  return r.ok;
}
