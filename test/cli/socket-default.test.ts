// Every command that asks a running daemon (status, reload, trace, target reset) takes the control
// socket the shipped unit binds when --socket is not given, so none needs a flag the others do not.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { assertFails, sentinel } from '../helpers/cli-harness.js';

const UNIT_SOCKET = '/run/omnimind-sentinel/sentinel.sock';

function find(program: Command, path: string[]): Command {
  let c = program;
  for (const name of path) {
    const next = c.commands.find((s) => s.name() === name);
    assert.ok(next !== undefined, `no command ${path.join(' ')}`);
    c = next;
  }
  return c;
}

test('status, reload, trace and target reset default --socket to the unit\'s control socket', () => {
  const program = buildProgram();
  for (const path of [['status'], ['reload'], ['trace'], ['target', 'reset']]) {
    const socket = find(program, path).options.find((o) => o.long === '--socket');
    assert.ok(socket !== undefined, `${path.join(' ')} has --socket`);
    assert.equal(socket.required, true, `${path.join(' ')}: --socket takes a path`);
    assert.equal(socket.mandatory, false, `${path.join(' ')}: --socket may be left out`);
    assert.equal(socket.defaultValue, UNIT_SOCKET, `${path.join(' ')}'s default socket`);
  }
});

test('sentinel status without --socket asks the unit\'s socket: with no daemon there, one line naming it', async (t) => {
  if (existsSync(UNIT_SOCKET)) {
    t.skip(`a daemon's socket exists at ${UNIT_SOCKET} on this host`);
    return;
  }
  const r = await sentinel(['status']);
  assertFails(r, ['unavailable', 'not-found']);
  assert.match(r.errLines[0] ?? '', new RegExp(UNIT_SOCKET.replace(/[./]/g, '\\$&')));
});
