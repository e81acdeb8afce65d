// Test harness for the daemon: a sealed test vault with signed bundles, a real daemon started in-process
// (or as a child process), a real AF_UNIX datagram listener (Python) standing in for systemd's notify socket.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { encodePublicKey } from '../../src/core/keys.js';
import { createLogger } from '../../src/adapters/logger.js';
import { startDaemon, type DaemonHandle, type DaemonOptions } from '../../src/daemon/main.js';
import { cleanupAll, makeVault, tempDir, sampleTree, type TestVault, type TreeSpec } from './vault-factory.js';
import type { CreatedBundle } from '../../src/vault/sign.js';

export interface TestDaemon {
  handle: DaemonHandle;
  tv: TestVault;
  dir: string;
  socket: string;
  auditPath: string;
  configPath: string;
  pubPath: string;
  logLines: Record<string, unknown>[];
  bundle(version: number, tree?: TreeSpec): Promise<CreatedBundle>;
}

/** Bundles valid from a fixed past time until 30 days from now (the daemon uses the real clock). */
export function bundleFactory(tv: TestVault): (version: number, tree?: TreeSpec) => Promise<CreatedBundle> {
  return (version, tree) => tv.bundle(version, tree ?? sampleTree(`v${String(version)}`), { created: new Date(Date.now() - 3_600_000), expires: new Date(Date.now() + 30 * 86_400_000) });
}

const daemonDirs: string[] = [];

// Why: the audit log is append-only (+a), which blocks its removal; lift it, then remove every test tree (+i lifted too).
export function cleanupDaemonFiles(): void {
  for (const d of daemonDirs.splice(0)) spawnSync('chattr', ['-R', '-f', '-a', d]);
  cleanupAll();
}

// Why: every daemon test starts from a fresh vault at version 1 and a config file naming it.
export async function prepareDaemonFiles(label: string, extra: Record<string, unknown> = {}, opts: { vaultBase?: string } = {}): Promise<{ tv: TestVault; dir: string; socket: string; auditPath: string; configPath: string; pubPath: string; config: Record<string, unknown>; bundle: (v: number, tree?: TreeSpec) => Promise<CreatedBundle> }> {
  const tv = await makeVault(label, opts.vaultBase !== undefined ? { base: opts.vaultBase } : {});
  const dir = tempDir(`${label}-d`);
  daemonDirs.push(dir);
  const pubPath = join(dir, 'release.pub');
  writeFileSync(pubPath, encodePublicKey(tv.keys[0]!.public));
  const bundle = bundleFactory(tv);
  const b1 = await bundle(1);
  await tv.vault.deploy(b1.path);
  const socket = join(dir, 'run', 'sentinel.sock');
  const auditPath = join(dir, 'log', 'audit.log');
  mkdirSync(join(dir, 'state'), { recursive: true });
  const config = {
    vault: { path: tv.path, trust: [pubPath], flagTracer: 'off' },
    control: { socket },
    audit: { path: auditPath },
    stateDir: join(dir, 'state'),
    log: { level: 'debug' },
    ...extra,
  };
  const configPath = join(dir, 'sentinel.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return { tv, dir, socket, auditPath, configPath, pubPath, config, bundle };
}

// Why: an in-process daemon whose log lines the test can read.
export async function startTestDaemon(
  label: string,
  extra: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
  { onLine, ...opts }: Pick<DaemonOptions, 'bpfObject' | 'flagStore'> & { /** Called with each log line as it is written, before the next. */ onLine?: (line: Record<string, unknown>) => void } = {},
): Promise<TestDaemon> {
  const files = await prepareDaemonFiles(label, extra);
  const logLines: Record<string, unknown>[] = [];
  let pending = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString('utf8');
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = JSON.parse(pending.slice(0, nl)) as Record<string, unknown>;
        logLines.push(line);
        pending = pending.slice(nl + 1);
        onLine?.(line);
      }
      cb();
    },
  });
  const handle = await startDaemon({ configFile: files.configPath, env, signals: false, logger: createLogger('debug', sink), ...opts });
  return { handle, tv: files.tv, dir: files.dir, socket: files.socket, auditPath: files.auditPath, configPath: files.configPath, pubPath: files.pubPath, logLines, bundle: files.bundle };
}

export { waitFor } from './wait.js';

const LISTENER = `
import socket, sys, json
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(('\\0' + addr[1:]) if addr.startswith('@') else addr)
print(json.dumps({"listening": addr}), flush=True)
while True:
    data, _ = s.recvfrom(65536)
    print(json.dumps({"datagram": data.decode('utf-8', 'replace')}), flush=True)
`;

export interface NotifyListener {
  address: string;
  datagrams: string[];
  /** Resolves with the first datagram (at or after index `from`) for which `match` holds. */
  next(match: (d: string) => boolean, timeoutMs: number, from?: number): Promise<string>;
  close(): void;
}

// Why: a real AF_UNIX SOCK_DGRAM peer, at a path or an abstract '@name' address.
export async function startNotifyListener(address: string): Promise<NotifyListener> {
  const child: ChildProcess = spawn('python3', ['-c', LISTENER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const datagrams: string[] = [];
  const waiters: (() => void)[] = [];
  const rl = createInterface({ input: child.stdout! });
  let resolveListening: () => void = () => undefined;
  const listening = new Promise<void>((r) => {
    resolveListening = r;
  });
  rl.on('line', (line) => {
    const msg = JSON.parse(line) as { listening?: string; datagram?: string };
    if (msg.listening !== undefined) resolveListening();
    if (msg.datagram !== undefined) {
      datagrams.push(msg.datagram);
      for (const w of waiters.splice(0)) w();
    }
  });
  await Promise.race([listening, new Promise((_, reject) => setTimeout(() => reject(new Error('python listener did not start')), 10_000))]);
  return {
    address,
    datagrams,
    async next(match, timeoutMs, from = 0) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const found = datagrams.slice(from).find(match);
        if (found !== undefined) return found;
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no matching datagram within ${String(timeoutMs)} ms; got ${JSON.stringify(datagrams)}`);
        await new Promise<void>((r) => {
          const timer = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(timer);
            r();
          });
        });
      }
    },
    close() {
      child.kill('SIGKILL');
    },
  };
}
