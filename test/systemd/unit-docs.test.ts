// What the project says about the shipped daemon unit's RestartPreventExitStatus= is what the unit has: every
// mention in the docs (README.md, systemd/README.md, docs/*.md), in the source's comments, in the packaging and in
// the test scenarios names the same exit codes as systemd/omnimind-sentinel.service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';

const root = packageRoot();
const UNIT = join(root, 'systemd', 'omnimind-sentinel.service');
const MENTION = /RestartPreventExitStatus=(\d+(?: \d+)*)/g;

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...filesUnder(p, keep));
    else if (keep(name)) found.push(p);
  }
  return found;
}

test("every statement of the daemon unit's RestartPreventExitStatus= matches the unit file", () => {
  const inUnit = [...readFileSync(UNIT, 'utf8').matchAll(/^RestartPreventExitStatus=(.*)$/gm)].map((m) => m[1]!.trim());
  assert.equal(inUnit.length, 1, 'the unit sets RestartPreventExitStatus= once');
  const codes = inUnit[0]!;
  const files = [
    join(root, 'README.md'),
    join(root, 'systemd', 'README.md'),
    ...filesUnder(join(root, 'docs'), (n) => n.endsWith('.md')),
    ...filesUnder(join(root, 'src'), (n) => n.endsWith('.ts')),
    ...filesUnder(join(root, 'packaging'), () => true),
    ...filesUnder(join(root, 'test', 'fixtures'), (n) => /\.(sh|service|conf|ts)$/.test(n)),
  ];
  const wrong: string[] = [];
  let mentions = 0;
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const m of line.matchAll(MENTION)) {
        mentions++;
        if (m[1] !== codes) wrong.push(`${relative(root, f)}:${String(i + 1)}: RestartPreventExitStatus=${m[1]!}`);
      }
    });
  }
  assert.ok(mentions >= 3, `the docs state it (README, systemd/README.md, DAEMON.md, CONFIG.md): ${String(mentions)} mentions found`);
  assert.deepEqual(wrong, [], `the unit has RestartPreventExitStatus=${codes}; these say otherwise`);
});
