// The Python integration's own unittest suite (integrations/python/tests), run by Debian's
// /usr/bin/python3 with the real FastAPI/Uvicorn, a real datagram listener and real child processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { needs } from '../helpers/env.js';

const PYTHON = '/usr/bin/python3';
const pkg = join(packageRoot(), 'integrations', 'python');

function hasFastApi(): boolean {
  return spawnSync(PYTHON, ['-c', 'import fastapi, uvicorn'], { stdio: 'ignore' }).status === 0;
}

function runUnittest(module: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, ['-m', 'unittest', '-v', module], {
      cwd: join(pkg, 'tests'),
      env: { ...process.env, PYTHONPATH: pkg, PYTHONDONTWRITEBYTECODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

for (const module of ['test_library', 'test_graceful_restart', 'test_serve']) {
  test(`python integration: ${module}`, { timeout: 240_000 }, async (t) => {
    if (needs(t, hasFastApi(), `${PYTHON} with python3-fastapi and python3-uvicorn (scripts/setup-host.sh)`)) return;
    const { code, output } = await runUnittest(module);
    const summary = /^Ran (\d+) tests?/m.exec(output);
    assert.ok(summary !== null && Number(summary[1]) > 0, `no tests ran:\n${output}`);
    assert.equal(code, 0, output);
    assert.match(output, /^OK/m, output);
    t.diagnostic(`${summary[1]} Python tests passed`);
  });
}
