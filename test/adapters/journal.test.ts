// journalLinesOf reads what a hung unit wrote, and the unit is not trusted: a run that flooded its
// journal with 48 KiB lines must not be buffered whole in the daemon. A real `journalctl` program (a
// script first on PATH, since a test host may have no journal) prints the run newest first, as
// `journalctl -r` does, and then never stops; the read ends at its bound with the dump kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JOURNAL_MAX_CHARS, journalLinesOf } from '../../src/adapters/journal.js';

const INVOCATION = 'ab'.repeat(16);

function withJournalctl(script: string): { dir: string; restore: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-journalctl-'));
  writeFileSync(join(dir, 'journalctl'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/args\n${script}`, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path ?? ''}`;
  return {
    dir,
    restore: () => {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a flooded journal is read up to its bound, newest lines kept: the dump is there, the memory is not spent', async () => {
  // newest first: the dump's last line first, then endless 48 KiB lines the run wrote before it
  const j = withJournalctl(`printf '%s\\n' '  File "/app/x.py", line 3 in gil' 'Current thread 0x00007f (most recent call first):' 'Fatal Python error: Aborted'\nexec yes "$(head -c 48000 /dev/zero | tr '\\0' x)"\n`);
  try {
    const rss0 = process.memoryUsage().rss;
    const r = await journalLinesOf({ unit: 'omnimind-backend.service', invocationId: INVOCATION, pid: 42 }, 2000);
    const grew = process.memoryUsage().rss - rss0;
    assert.equal(r.truncated, true);
    assert.ok(r.lines.reduce((n, l) => n + l.length + 1, 0) <= JOURNAL_MAX_CHARS, 'no more than the bound kept');
    assert.deepEqual(r.lines.slice(-3), ['Fatal Python error: Aborted', 'Current thread 0x00007f (most recent call first):', '  File "/app/x.py", line 3 in gil'], 'oldest first, the dump at the end');
    assert.ok(grew < 64 * 1024 * 1024, `the daemon's memory grew ${String(grew)} bytes`);
    const args = readFileSync(join(j.dir, 'args'), 'utf8').trim().split('\n');
    assert.deepEqual(args, [`_SYSTEMD_INVOCATION_ID=${INVOCATION}`, '-r', '-o', 'cat', '--no-pager', '-n', '2000']);
  } finally {
    j.restore();
  }
});

test('without an invocation id the run is named by its unit and main PID; journalctl\'s failure is one line naming it', async () => {
  const j = withJournalctl(`printf '%s\\n' 'b' 'a'\n`);
  try {
    const r = await journalLinesOf({ unit: 'omnimind-backend.service', invocationId: null, pid: 42 }, 10);
    assert.deepEqual(r, { lines: ['a', 'b'], truncated: false });
    assert.deepEqual(readFileSync(join(j.dir, 'args'), 'utf8').trim().split('\n').slice(0, 2), ['_SYSTEMD_UNIT=omnimind-backend.service', '_PID=42']);
  } finally {
    j.restore();
  }
  const f = withJournalctl(`echo 'No journal files were found.' >&2\nexit 1\n`);
  try {
    await assert.rejects(journalLinesOf({ unit: 'omnimind-backend.service', invocationId: INVOCATION, pid: 42 }, 10), /journalctl _SYSTEMD_INVOCATION_ID=.* failed: No journal files were found\./);
  } finally {
    f.restore();
  }
});
