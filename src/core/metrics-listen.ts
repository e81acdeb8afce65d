// Where the Prometheus exposition listens (`metrics.listen`): a TCP address with an IP literal and a port,
// or an absolute Unix socket path. Pure: the config schema and the listener both read it through here.
import { utf8Length } from './canonical-json.js';

export type MetricsListen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

// Why: the listener binds exactly where the operator said: an IP literal (no name to resolve, no implied
// wildcard), a port 1-65535, or a socket path; anything else is refused with what is expected.
export function parseMetricsListen(value: string): MetricsListen | { error: string } {
  if (value.startsWith('/')) {
    if (value.endsWith('/') || value.includes('\0') || value.split('/').includes('..')) return { error: 'a Unix socket path must name a file (no "..", no trailing "/")' };
    // sun_path holds 107 bytes and a NUL.
    if (utf8Length(value) > 107) return { error: 'a Unix socket path is at most 107 bytes' };
    return { kind: 'unix', path: value };
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(value);
  const expected = 'expected "IP:PORT" (e.g. "127.0.0.1:9464", "[::1]:9464") or an absolute Unix socket path';
  if (m === null) return { error: expected };
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (m[1] !== undefined ? !(IPV6.test(host) && host.includes(':')) : !IPV4.test(host)) return { error: `${JSON.stringify(host)} is not an IP address; ${expected}` };
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `port ${m[3] ?? ''} is not in 1-65535` };
  return { kind: 'tcp', host, port };
}
