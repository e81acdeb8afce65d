// The nspawn scenarios (package, checkout install, metrics, no vault, a crash after start-up) share one `step` helper, bound into each
// container at the same path (test/helpers/nspawn-inputs.ts SCENARIO_STEP_GUEST), instead of a copy each; the
// helper itself, run in a real bash: each step's exit code and output land in $OUT/NAME.rc and $OUT/NAME.out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { SCENARIO_STEP, SCENARIO_STEP_GUEST } from '../helpers/nspawn-inputs.js';

const fixtures = join(packageRoot(), 'test', 'fixtures');

test('every nspawn scenario sources the one step helper and defines no step() of its own', () => {
  const scenarios = readdirSync(fixtures).filter((d) => existsSync(join(fixtures, d, 'scenario.sh')));
  assert.deepEqual(scenarios.sort(), ['checkout', 'crash-exit', 'metrics', 'no-vault', 'package']);
  for (const name of scenarios) {
    const text = readFileSync(join(fixtures, name, 'scenario.sh'), 'utf8');
    assert.doesNotMatch(text, /^\s*step\s*\(\)/m, `${name}/scenario.sh defines its own step()`);
    assert.match(text, new RegExp(`^\\. ${SCENARIO_STEP_GUEST.replace(/[.]/g, '\\.')}$`, 'm'), `${name}/scenario.sh sources ${SCENARIO_STEP_GUEST}`);
  }
});

test('the step helper in bash: NAME.rc holds the exit code, NAME.out stdout and stderr, bounded by its timeout', () => {
  const out = mkdtempSync(join(tmpdir(), 'sentinel-step-'));
  try {
    const script = `. ${SCENARIO_STEP}\nstep ok sh -c 'echo hello; echo oops >&2'\nstep fails sh -c 'exit 3'\nstep missing /nonexistent/command\n`;
    const r = spawnSync('bash', ['-c', script], { env: { ...process.env, OUT: out }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'ok.rc'), 'utf8'), '0\n');
    assert.equal(readFileSync(join(out, 'ok.out'), 'utf8'), 'hello\noops\n');
    assert.equal(readFileSync(join(out, 'fails.rc'), 'utf8'), '3\n');
    assert.equal(readFileSync(join(out, 'missing.rc'), 'utf8'), '127\n');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
