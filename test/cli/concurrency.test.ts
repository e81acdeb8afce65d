// One operation at a time (docs/VAULT.md#locking), through the CLI as users meet it: rounds of 12
// concurrent `sentinel deploy` processes with `vault verify` beside them. After every round the vault
// is consistent: `current` is the highest version any deploy reported, highest.json says the same,
// every deploy that said "deployed" named a version that was live at some point (no silent rollback),
// verify exits 0 (also the ones that ran beside the deploys), and at most `keep` releases are kept.
// SENTINEL_RACE_ROUNDS sets the rounds (default 6; the long run is 20).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ONE_YEAR_LATER, T0, testKey } from '../helpers/core-factory.js';
import { createBundle } from '../../src/vault/sign.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import type { CliResult } from '../helpers/cli-harness.js';

after(() => cleanupAll());

const ROUNDS = Number(process.env.SENTINEL_RACE_ROUNDS ?? '6');
const DEPLOYS = 12;
const VERIFIES = 2;

function versionOfRelease(dir: string): number {
  const m = /^r(\d+)-/.exec(dir);
  assert.ok(m !== null, `release dir ${dir}`);
  return Number(m[1]);
}

test(`${DEPLOYS} concurrent CLI deploys with verify beside them, ${ROUNDS} rounds: the vault is consistent after every round`, { timeout: 60_000 + ROUNDS * 60_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const base = tempDir('race');
  const key = testKey('race');
  const k = writeKeyFiles(base, 'k', key);
  const vault = join(base, 'vault');
  assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub, '--vault-id', 'race']));
  const src = join(base, 'src');
  writeTree(src, sampleTree('race'));
  // Every bundle is signed up front (in this process: the deploys race, not the signing).
  const bundles: string[] = [];
  for (let v = 1; v <= 1 + ROUNDS * DEPLOYS; v++) {
    const out = join(base, `v${v}.bundle`);
    await createBundle(src, { keys: [key.secret], vaultId: 'race', version: v, created: T0, expires: ONE_YEAR_LATER, out });
    bundles.push(out);
  }
  assertOk(await sentinel(['deploy', bundles[0]!, '--vault', vault]));

  const problems: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const first = 2 + round * DEPLOYS;
    const runs: Promise<{ kind: 'deploy' | 'verify'; version: number; r: CliResult }>[] = [];
    for (let i = 0; i < DEPLOYS; i++) {
      const v = first + i;
      runs.push(sentinel(['deploy', bundles[v - 1]!, '--vault', vault, '--json'], { timeoutMs: 120_000 }).then((r) => ({ kind: 'deploy' as const, version: v, r })));
      if (i < VERIFIES) runs.push(sentinel(['vault', 'verify', vault, '--json'], { timeoutMs: 120_000 }).then((r) => ({ kind: 'verify' as const, version: 0, r })));
    }
    const started = performance.now();
    const results = await Promise.all(runs);
    t.diagnostic(`round ${round}: ${results.filter((x) => x.kind === 'deploy' && x.r.code === 0).length} of ${DEPLOYS} deploys succeeded in ${Math.round(performance.now() - started)} ms`);
    const ok = results.filter((x) => x.kind === 'deploy' && x.r.code === 0);
    for (const x of results) {
      if (x.kind === 'verify' && x.r.code !== 0) problems.push(`round ${round}: verify beside the deploys failed: ${x.r.stdout.slice(0, 400)} ${x.r.stderr}`);
      if (x.kind === 'deploy' && x.r.code !== 0 && !/^sentinel: (rollback|busy): /.test(x.r.errLines[0] ?? '')) problems.push(`round ${round}: deploy v${x.version} failed otherwise: ${x.r.stderr}`);
      if (x.kind === 'deploy' && x.r.code === 0) {
        const reported = JSON.parse(x.r.stdout) as { ok: boolean; version: number };
        if (reported.ok !== true || reported.version !== x.version) problems.push(`round ${round}: deploy v${x.version} reported ${x.r.stdout}`);
      }
    }
    if (ok.length === 0) {
      problems.push(`round ${round}: no deploy succeeded`);
      continue;
    }
    const top = Math.max(...ok.map((x) => x.version));
    const live = readlinkSync(join(vault, 'current'));
    const highest = (JSON.parse(readFileSync(join(vault, 'state', 'highest.json'), 'utf8')) as { version: number }).version;
    const kept = readdirSync(join(vault, 'releases'));
    if (versionOfRelease(live.split('/')[1]!) !== top) problems.push(`round ${round}: live ${live}, but the highest version a deploy reported is ${top}`);
    if (highest !== top) problems.push(`round ${round}: highest.json says ${highest}, the highest deployed version is ${top}`);
    if (kept.length > 3) problems.push(`round ${round}: ${kept.length} releases kept (${kept.join(', ')})`);
    if (!kept.includes(live.split('/')[1]!)) problems.push(`round ${round}: the live release ${live} is not kept`);
    const v = await sentinel(['vault', 'verify', vault]);
    if (v.code !== 0) problems.push(`round ${round}: verify after the round: ${v.stdout} ${v.stderr}`);
  }
  assert.deepEqual(problems, [], problems.join('\n'));
});
