// A retransmit the kernel tried but could not send (here an nftables drop on the server's own output,
// the kernel's TCPRetransFail) is not counted: the count is of retransmits that left the host, on every
// kernel (newer ones fire the tracepoint for failed attempts too, with their error).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfEngine } from '../../src/adapters/bpf-engine.js';
import { createNetnsPair, hasTools, type NetnsPair } from '../helpers/netns.js';
import { needs } from '../helpers/env.js';
import { makeTempDir, removeTempDirs } from '../helpers/temp.js';
import { needsEngine, python } from '../helpers/bpf.js';
import { waitFor } from '../helpers/wait.js';

test.after(() => removeTempDirs());

// A port of this file's own: the tracepoint sees every network namespace.
const PORT = 8012;

/** A table of one rule dropping what the port sends, on a namespace's input or output hook. */
async function dropPort(net: NetnsPair, ns: string, hook: 'input' | 'output'): Promise<void> {
  await net.exec(ns, ['nft', '-f', '-'], `table inet sentinel_${hook} {\n  chain ${hook} {\n    type filter hook ${hook} priority 0; policy accept;\n    tcp sport ${String(PORT)} drop\n  }\n}\n`);
}

/** One counter of a namespace's /proc/net/netstat (TcpExt: TCPRetransFail, …). */
async function tcpExt(net: NetnsPair, ns: string, name: string): Promise<number> {
  const { stdout } = await net.exec(ns, ['cat', '/proc/net/netstat']);
  const lines = stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf(name)]);
}

test('a retransmit the kernel could not send (dropped on the host\'s own output) is not counted', async (t) => {
  if (needsEngine(t)) return;
  if (needs(t, hasTools(['nft', '--version'], ['ip', '-V'], ['ss', '-V']), 'nftables, iproute2 and ss')) return;
  const dir = makeTempDir('bpf-retransmit-failed');
  const go = join(dir, 'go');
  const net = await createNetnsPair();
  const engine = BpfEngine.open({ groups: ['retransmit'], onRecord: () => undefined });
  t.after(async () => {
    engine.close();
    await net.cleanup();
  });
  engine.watchPort(PORT, 200);
  // The server sends 256 KB once the client's first byte came; the client sends it once told to.
  net.spawn(net.server, [python(), '-c', `import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("${net.serverIp}", ${String(PORT)}))\ns.listen(1)\nc, _ = s.accept()\nc.recv(1)\nc.sendall(b"a" * 262144)\ntime.sleep(120)\n`]);
  net.spawn(net.client, [python(), '-c', `import os, socket, time\nwhile True:\n    try:\n        c = socket.create_connection(("${net.serverIp}", ${String(PORT)}), timeout=5)\n        break\n    except OSError:\n        time.sleep(0.05)\nwhile not os.path.exists(${JSON.stringify(go)}):\n    time.sleep(0.02)\nc.send(b"g")\ntime.sleep(120)\n`]);
  await waitFor('the connection established', 30_000, async () => ((await net.exec(net.server, ['ss', '-Htn', 'state', 'established', `( sport = :${String(PORT)} )`])).stdout.trim() === '' ? null : true));
  // The client loses everything the server sends: the data stays in flight and the server retransmits it.
  await dropPort(net, net.client, 'input');
  const sent0 = await net.retransSegs(net.server);
  writeFileSync(go, '');
  await waitFor('a first retransmit that left the server', 30_000, async () => ((await net.retransSegs(net.server)) > sent0 ? true : null));
  // From now on the server's own output refuses the port: every further retransmit fails in the kernel.
  await dropPort(net, net.server, 'output');
  const counted = engine.portCount(PORT) ?? 0;
  const fail0 = await tcpExt(net, net.server, 'TCPRetransFail');
  const failed = await waitFor('two retransmits that failed in the kernel (TCPRetransFail)', 30_000, async () => {
    const n = (await tcpExt(net, net.server, 'TCPRetransFail')) - fail0;
    return n >= 2 ? n : null;
  });
  assert.ok(counted >= 1, `the retransmits that left the server were counted (${String(counted)})`);
  assert.equal(engine.portCount(PORT), counted, `${String(failed)} retransmits that failed in the kernel (TCPRetransFail) must not count: the count went from ${String(counted)} to ${String(engine.portCount(PORT))}`);
});
