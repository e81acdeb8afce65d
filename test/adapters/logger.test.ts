// The daemon's logger in a real child process whose stdout is a file: with JOURNAL_STREAM naming that
// file every line carries its syslog priority prefix (what journald reads), without it plain JSON.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { syslogPriority } from '../../src/adapters/logger.js';
import { cleanupAll, tempDir } from '../helpers/vault-factory.js';

after(() => cleanupAll());

const LOGGER = fileURLToPath(new URL('../../src/adapters/logger.js', import.meta.url));
const SCRIPT = `
const { createLogger } = await import(process.argv[1]);
const log = createLogger('trace');
log.fatal({ event: 'a' }, 'fatal'); log.error({ event: 'b', secret: 'k' }, 'error'); log.warn('warn');
log.info('info'); log.debug('debug'); log.trace('trace');
log.child({ component: 'targets' }).warn({ event: 'c' }, 'child warn');
`;

function run(journalStream: (file: string) => string | undefined): string[] {
  const dir = tempDir('logger');
  const file = join(dir, 'out.log');
  const fd = openSync(file, 'w');
  try {
    const st = statSync(file);
    const value = journalStream(file) ?? `${String(st.dev)}:${String(st.ino)}`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', SCRIPT, LOGGER], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', env: { ...process.env, JOURNAL_STREAM: value } });
    assert.equal(r.status, 0, r.stderr);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, 'utf8').trim().split('\n');
}

test('stdout is the journal: each line starts with the syslog priority of its level', () => {
  const lines = run(() => undefined);
  const prefixes = lines.map((l) => /^<(\d)>/.exec(l)?.[1]);
  assert.deepEqual(prefixes, ['2', '3', '4', '6', '7', '7', '4']);
  const parsed = lines.map((l) => JSON.parse(l.replace(/^<\d>/, '')) as { level: string; msg: string; secret?: string; component?: string });
  assert.deepEqual(parsed.map((p) => p.level), ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'warn']);
  assert.equal(parsed[1]?.secret, '[redacted]', 'redaction still applies');
  assert.equal(parsed[6]?.component, 'targets', 'child loggers keep their fields and their priority');
});

test('stdout is not the journal (another stream or no JOURNAL_STREAM): plain JSON lines', () => {
  for (const value of ['1:1', '', 'garbage']) {
    const lines = run(() => value);
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `plain JSON with JOURNAL_STREAM=${value}: ${l}`);
    assert.equal(lines.length, 7);
  }
});

test('pino levels map onto syslog priorities', () => {
  assert.deepEqual([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7]);
});
