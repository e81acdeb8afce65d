// The HTTP health probe against real sockets: a refused port and a server that accepts but never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpProbe } from '../../src/adapters/http-probe.js';

test('http probe: a refused port and a server that never answers both fail within the timeout', async () => {
  const { createServer } = await import('node:net');
  const silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const addr = silent.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  try {
    const hung = await httpProbe(`http://127.0.0.1:${port}/health`, 150);
    assert.equal(hung.ok, false);
    assert.match(hung.ok ? '' : hung.error, /no answer within 150 ms/);
  } finally {
    silent.close();
  }
  const refused = await httpProbe(`http://127.0.0.1:${port}/health`, 1000);
  assert.equal(refused.ok, false);
});

