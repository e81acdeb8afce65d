// sd_notify socket: one datagram per message, from this process (native addon) or via systemd-notify.
import { SentinelError } from '../core/errors.js';
import { addressString, type NotifyAddress } from '../core/sd-notify.js';

// Why: the daemon talks to systemd through this interface so tests can record messages.
export interface Notifier {
  readonly kind: 'native' | 'systemd-notify';
  send(message: string): Promise<void>;
}

interface NativeNotify {
  notify(socketAddress: string, message: string): void;
}

async function loadNativeNotify(): Promise<NativeNotify | null> {
  try {
    // A literal specifier, so the CLI bundle carries the module (docs/ARCHITECTURE.md#start-up).
    const mod = (await import('./native.js')) as { loadNative?: () => NativeNotify | null };
    return typeof mod.loadNative === 'function' ? mod.loadNative() : null;
  } catch {
    return null;
  }
}

// Why: the native addon sends from our own PID (needed by NotifyAccess=main); systemd-notify --pid is the fallback.
export async function createNotifier(address: NotifyAddress, opts: { pid: number; forceFallback?: boolean }): Promise<Notifier> {
  const target = addressString(address);
  const native = opts.forceFallback === true ? null : await loadNativeNotify();
  if (native !== null) {
    return {
      kind: 'native',
      send(message: string): Promise<void> {
        try {
          native.notify(target, message);
          return Promise.resolve();
        } catch (cause) {
          return Promise.reject(new SentinelError('io', `sd_notify to ${target} failed`, { where: target, cause }));
        }
      },
    };
  }
  return {
    kind: 'systemd-notify',
    async send(message: string): Promise<void> {
      const args = [`--pid=${String(opts.pid)}`, ...message.split('\n').filter((l) => l !== '')];
      // The process adapter (execa) only when the addon is missing (docs/ARCHITECTURE.md#start-up).
      const { runCommand } = await import('./process.js');
      const r = await runCommand(['systemd-notify', ...args], { timeoutMs: 5_000, env: { NOTIFY_SOCKET: target } });
      if (!r.ok) throw new SentinelError('io', `systemd-notify failed: ${r.timedOut ? 'timed out after 5000 ms' : r.stderr.trim() || r.message}`, { where: target, cause: r });
    },
  };
}
