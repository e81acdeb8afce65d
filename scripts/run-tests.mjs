#!/usr/bin/env node
// Runs every compiled test file with node:test and prints each file's wall time at the end.
// Usage: node scripts/run-tests.mjs [filter...]
// Filters are substrings of test file names (e.g. `vault` runs dist/test/**/*vault*.test.js).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { leftovers, snapshot } from './test-leftovers.mjs';

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
const reporters = ['spec', './scripts/test-file-times.mjs'].flatMap((r) => [`--test-reporter=${r}`, '--test-reporter-destination=stdout']);
const before = snapshot();
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, `--test-timeout=${timeout}`, ...reporters, ...files], { stdio: 'inherit' });
// What the tests left on the machine (a later test, or the next run, would meet it): printed, not judged.
const left = leftovers(before);
console.log(left.length === 0 ? '\nleft after the run: nothing (processes, netns, nft tables, mounts, cgroups, machines)' : `\nleft after the run (not there before it):\n${left.map((l) => `  ${l}`).join('\n')}`);
process.exit(r.status ?? 1);
