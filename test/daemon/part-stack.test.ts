// The daemon's one teardown (src/daemon/components.ts PartStack): reverse order, a part whose start failed
// is stopped too, a failing stop is logged and the rest still stop, and a second stopAll does nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/adapters/logger.js';
import { PartStack, closing, type DaemonPart, type StopContext } from '../../src/daemon/components.js';

function recorder(): { events: string[]; part(name: string, opts?: { failStart?: boolean; failStop?: boolean }): DaemonPart } {
  const events: string[] = [];
  return {
    events,
    part: (name, opts = {}) => ({
      name,
      start: () => {
        events.push(`start ${name}`);
        return opts.failStart === true ? Promise.reject(new Error(`${name} cannot start`)) : Promise.resolve();
      },
      stop: (how: StopContext) => {
        events.push(`stop ${name} (${how.reason}, started ${String(how.started)})`);
        return opts.failStop === true ? Promise.reject(new Error(`${name} cannot stop`)) : Promise.resolve();
      },
    }),
  };
}

test('parts stop in reverse start order, each once', async () => {
  const lines: string[] = [];
  const stack = new PartStack(createLogger('warn', { write: (l: string) => void lines.push(l) }));
  const r = recorder();
  for (const name of ['audit', 'vault', 'control', 'notify']) await stack.start(r.part(name));
  await stack.stopAll({ reason: 'SIGTERM', started: true });
  await stack.stopAll({ reason: 'again', started: true });
  assert.deepEqual(r.events, [
    'start audit',
    'start vault',
    'start control',
    'start notify',
    'stop notify (SIGTERM, started true)',
    'stop control (SIGTERM, started true)',
    'stop vault (SIGTERM, started true)',
    'stop audit (SIGTERM, started true)',
  ]);
  assert.deepEqual(lines, [], 'nothing failed, nothing logged');
});

test('a start that fails half-way: that part and the ones before it are stopped, later ones never started', async () => {
  const stack = new PartStack(createLogger('silent'));
  const r = recorder();
  await stack.start(r.part('audit'));
  await assert.rejects(stack.start(r.part('control', { failStart: true })), /control cannot start/);
  await stack.stopAll({ reason: 'start failed', started: false });
  assert.deepEqual(r.events, ['start audit', 'start control', 'stop control (start failed, started false)', 'stop audit (start failed, started false)']);
});

test('a stop that fails is logged and the parts below it still stop', async () => {
  const lines: string[] = [];
  const stack = new PartStack(createLogger('warn', { write: (l: string) => void lines.push(l) }));
  const r = recorder();
  let closed = false;
  await stack.start(closing('hash-pool', () => Promise.resolve(void (closed = true))));
  await stack.start(r.part('tracer', { failStop: true }));
  await stack.stopAll({ reason: 'SIGTERM', started: true });
  assert.equal(closed, true);
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /"event":"component-stop-failed","component":"tracer","err":"tracer cannot stop"/);
});
