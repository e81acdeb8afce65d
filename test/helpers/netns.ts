// Two network namespaces joined by a veth pair, for tests that need real packet loss
// (nftables random drop). Unique names per call; `cleanup()` deletes everything it made.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NetnsPair {
  server: string;
  client: string;
  serverIp: string;
  clientIp: string;
  /** Run argv inside a namespace and wait for it. */
  exec(ns: string, argv: string[], input?: string): Promise<{ stdout: string; stderr: string }>;
  /** Start a long-running process inside a namespace (killed by cleanup). */
  spawn(ns: string, argv: string[]): ChildProcess;
  /** Random drop of `percent`% of the TCP packets from these source ports, in the client namespace. */
  dropFromPorts(ports: number[], percent: number): Promise<void>;
  /** The namespace's TCP RetransSegs counter (/proc/net/snmp). */
  retransSegs(ns: string): Promise<number>;
  cleanup(): Promise<void>;
}

function nftInput(ports: number[], percent: number): string {
  return [
    'table inet sentinel_test {',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    tcp sport { ${ports.join(', ')} } numgen random mod 100 < ${percent} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

// Why: retransmissions must be made for real, only inside namespaces the test itself owns.
export async function createNetnsPair(): Promise<NetnsPair> {
  const tag = randomBytes(3).toString('hex');
  const server = `sentinel-s-${tag}`;
  const client = `sentinel-c-${tag}`;
  const vs = `vs${tag}`;
  const vc = `vc${tag}`;
  const serverIp = '10.213.0.1';
  const clientIp = '10.213.0.2';
  const children: ChildProcess[] = [];
  const made: string[] = [];

  const cleanup = async (): Promise<void> => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode === null && c.signalCode === null ? c.once('exit', () => resolve()) : resolve()))));
    for (const ns of made.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  };

  const pair: NetnsPair = {
    server,
    client,
    serverIp,
    clientIp,
    exec: async (ns, argv, input) => {
      const p = run('ip', ['netns', 'exec', ns, ...argv], { maxBuffer: 64 * 1024 * 1024 });
      if (input !== undefined) {
        p.child.stdin?.end(input);
      }
      const r = await p;
      return { stdout: r.stdout, stderr: r.stderr };
    },
    spawn: (ns, argv) => {
      const c = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'ignore' });
      children.push(c);
      return c;
    },
    dropFromPorts: async (ports, percent) => {
      await pair.exec(client, ['nft', '-f', '-'], nftInput(ports, percent));
    },
    retransSegs: async (ns) => {
      const { stdout } = await pair.exec(ns, ['cat', '/proc/net/snmp']);
      const lines = stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
      const names = lines[0]?.split(/\s+/) ?? [];
      const values = lines[1]?.split(/\s+/) ?? [];
      return Number(values[names.indexOf('RetransSegs')]);
    },
    cleanup,
  };

  try {
    for (const ns of [server, client]) {
      await run('ip', ['netns', 'add', ns]);
      made.push(ns);
    }
    await run('ip', ['link', 'add', vs, 'type', 'veth', 'peer', 'name', vc]);
    await run('ip', ['link', 'set', vs, 'netns', server]);
    await run('ip', ['link', 'set', vc, 'netns', client]);
    for (const [ns, dev, ip] of [
      [server, vs, serverIp],
      [client, vc, clientIp],
    ] as const) {
      await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
      await run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (e) {
    await cleanup();
    await run('ip', ['link', 'del', vs]).catch(() => undefined);
    throw e;
  }
  return pair;
}

/** Whether each tool runs here (each given as its command and a harmless version flag): nft, ip, ss. */
export function hasTools(...tools: [string, string][]): boolean {
  return tools.every(([cmd, flag]) => {
    try {
      execFileSync(cmd, [flag], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
}
