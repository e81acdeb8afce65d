// Helpers of the metrics tests: a free loopback port, an HTTP GET over TCP or a Unix socket, and the
// Prometheus text format read back into samples.
import { request } from 'node:http';
import { createServer } from 'node:net';

/** A loopback port that was free a moment ago (bind to 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request; `to` is `host:port` or a Unix socket path. */
export function httpGet(to: string, path: string, method = 'GET', timeoutMs = 10_000): Promise<HttpReply> {
  const target = to.startsWith('/') ? { socketPath: to } : { host: to.slice(0, to.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: Number(to.slice(to.lastIndexOf(':') + 1)) };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no reply from ${to}${path} within ${String(timeoutMs)} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `name{labels} value` lines of the exposition format, by their full series name. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** The value of the one series of `name` whose labels include every `labels` pair. */
export function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const [series, value] of samples) {
    const brace = series.indexOf('{');
    const n = brace < 0 ? series : series.slice(0, brace);
    if (n !== name) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) return value;
  }
  return undefined;
}

/** The metric names the daemon exposes (docs/DAEMON.md#metrics). */
export const SENTINEL_METRICS = [
  'sentinel_vault_intact',
  'sentinel_vault_version',
  'sentinel_deploys_total',
  'sentinel_rejects_total',
  'sentinel_tampers_total',
  'sentinel_heals_total',
  'sentinel_heal_failures_total',
  'sentinel_audit_tampers_total',
  'sentinel_heal_duration_seconds',
  'sentinel_target_up',
  'sentinel_target_restarts_total',
  'sentinel_recovery_latency_seconds',
  'sentinel_protection_state',
  'sentinel_watchdog_healthy',
];
