#!/usr/bin/env node
// Runs every compiled test file with node:test and prints each file's wall time at the end.
// Usage: node scripts/run-tests.mjs [filter...]
// Filters are substrings of test file names (e.g. `vault` runs dist/test/**/*vault*.test.js).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = 'dist/test';
const filters = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js') && (filters.length === 0 || filters.some((f) => p.includes(f)))) files.push(p);
  }
})(root);
if (files.length === 0) {
  console.error(`run-tests: no test files under ${root} match ${filters.join(' ') || '(all)'}`);
  process.exit(2);
}
const concurrency = process.env.SENTINEL_TEST_CONCURRENCY ?? '2';
// A test that hangs fails after this long instead of holding the whole run until CI's own limit.
const timeout = process.env.SENTINEL_TEST_TIMEOUT_MS ?? '240000';
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=./scripts/test-file-times.mjs', '--test-reporter-destination=stdout'];
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, ...reporters, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
