// A `verify` request that finds problems starts a tamper check and answers at once; a check that cannot run
// (the daemon began to stop in between: `unavailable`) is logged, never an unhandled rejection, which would end
// the daemon as a crash (exit 2) in the middle of its clean stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { SentinelError } from '../../src/core/errors.js';
import { createLogger } from '../../src/adapters/logger.js';
import { controlRequestHandler, type RequestDeps } from '../../src/daemon/requests.js';

test('a verify request whose tamper check is refused (the daemon stopping) logs it instead of leaving an unhandled rejection', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const report = { ok: false, problems: [{ code: 'hash-mismatch', path: 'releases/x/tree/a', message: 'changed' }] };
    let checks = 0;
    const sentinel = {
      verify: () => Promise.resolve(report),
      checkTamper: () => {
        checks++;
        return Promise.reject(new SentinelError('unavailable', 'the daemon is shutting down', { where: 'tamper check' }));
      },
    };
    const handle = controlRequestHandler({ sentinel, log: createLogger('debug', sink) } as unknown as RequestDeps);
    assert.deepEqual(await handle({ op: 'verify', id: '1' }), report, 'the report is the answer');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(checks, 1, 'the problems started a tamper check');
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
    await new Promise((r) => setImmediate(r));
    assert.ok(lines.some((l) => l.event === 'tamper-check-refused' && /shutting down/.test(String(l.err))), JSON.stringify(lines));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
