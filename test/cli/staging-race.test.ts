// Staging through directory fds (docs/SECURITY.md#how-deploy-and-heal-write): a root process racing
// the deploys swaps what sits at the staging paths (the exact attacker, an unprivileged owner
// of the vault directory, is refused by the ownership rule, test/cli/vault-dirs.test.ts; root is the
// only one left who can rename there). It (A) replaces a staged release, once its signatures.json is
// written, with a copy holding a phi/engine.py of its own, (B) replaces a freshly made staged release
// with a symlink to a directory of its own and writes its engine.py there, and (C, at the `staged`
// hook) moves staging/ itself away and puts its own staging/ with its own copy in place. Every deploy
// or heal either succeeds with exactly the signed bytes live or fails with one clear error and leaves
// the live release as it was; no attacker byte is ever in a kept release. SENTINEL_RACE_SECONDS
// (default 8; the long run is 30) bounds each race.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ONE_YEAR_LATER, T0, testKey } from '../helpers/core-factory.js';
import { cleanupAll, closeDeps, makeVault, run, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { assertOk, sentinel, writeKeyFiles } from '../helpers/cli-harness.js';
import { createBundle } from '../../src/vault/sign.js';
import { isSentinelError } from '../../src/core/errors.js';
import { openVault } from '../../src/vault/index.js';

after(() => cleanupAll());

const RACE_SECONDS = Number(process.env.SENTINEL_RACE_SECONDS ?? '8');
const MARK = '# attacker was here\n';

/** Every path under `dir` that holds the attacker's bytes, is a symlink where a release was, or cannot be read. */
function attackerTraces(dir: string, top = true): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...attackerTraces(p, false));
    else if (st.isSymbolicLink() && top) out.push(`${p} is a symlink`);
    else if (st.isFile() && readFileSync(p).includes(MARK)) out.push(p);
  }
  return out;
}

// As root, for `seconds`: (A) a staged release that looks complete is swapped for a copy with its own
// engine.py; (B) a fresh one is swapped for a symlink to a directory of its own, whose engine.py it
// then overwrites. A and B alternate between releases. Prints how many swaps it made.
function startAttacker(staging: string, evil: string, seconds: number): { child: ChildProcess; done: Promise<string> } {
  const script = `
    const fs = require('node:fs'); const p = require('node:path');
    const S = ${JSON.stringify(staging)}, E = ${JSON.stringify(evil)}, MARK = ${JSON.stringify(MARK)};
    const end = Date.now() + ${seconds * 1000}; const plan = new Map(); const links = []; let n = 0, a = 0, b = 0;
    while (Date.now() < end) {
      for (const l of links.splice(0)) {
        try { fs.writeFileSync(p.join(l, 'tree', 'phi', 'engine.py'), MARK); } catch { if (Date.now() < end) links.push(l); }
      }
      let names = []; try { names = fs.readdirSync(S); } catch {}
      for (const name of names) {
        if (!/^r[0-9]/.test(name) || name.endsWith('.bundle')) continue;
        const d = p.join(S, name);
        try {
          if (!fs.lstatSync(d).isDirectory()) continue;
          if (!plan.has(name)) plan.set(name, plan.size % 2 === 0 ? 'A' : 'B');
          if (plan.get(name) === 'A' && fs.existsSync(p.join(d, 'signatures.json'))) {
            const own = p.join(E, 'own-' + (++n)); fs.cpSync(d, own, { recursive: true });
            fs.writeFileSync(p.join(own, 'tree', 'phi', 'engine.py'), MARK);
            fs.renameSync(d, p.join(E, 'taken-' + n)); fs.renameSync(own, d); a++;
          } else if (plan.get(name) === 'B') {
            const own = p.join(E, 'link-' + (++n)); fs.mkdirSync(own);
            fs.renameSync(d, p.join(E, 'taken-' + n)); fs.symlinkSync(own, d); links.push(own); b++;
          }
        } catch {}
      }
    }
    process.stdout.write(a + ' ' + b);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<string>((r) => child.on('exit', () => r(out)));
  return { child, done };
}

describe('staging under a racing root process', { concurrency: false }, () => {
  it(`deploys through the CLI while staged releases are swapped for ${RACE_SECONDS} s: signed bytes live, or one clear error and nothing changed`, { timeout: 120_000 + RACE_SECONDS * 3000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i, renames in staging/)')) return;
    const base = tempDir('staging-race');
    const key = testKey('staging-race');
    const k = writeKeyFiles(base, 'k', key);
    const vault = join(base, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', k.pub, '--vault-id', 'srace']));
    const bundles: { path: string; engine: string }[] = [];
    for (let v = 1; v <= 200; v++) {
      const src = join(base, `src-${v}`);
      const tree = sampleTree(`v${v}`);
      writeTree(src, tree);
      const out = join(base, `v${v}.bundle`);
      await createBundle(src, { keys: [key.secret], vaultId: 'srace', version: v, created: T0, expires: ONE_YEAR_LATER, out });
      bundles.push({ path: out, engine: readFileSync(join(src, 'phi', 'engine.py'), 'utf8') });
    }
    assertOk(await sentinel(['deploy', bundles[0]!.path, '--vault', vault]));
    const evil = join(base, 'evil');
    mkdirSync(evil);
    const attacker = startAttacker(join(vault, 'staging'), evil, RACE_SECONDS);
    t.after(() => attacker.child.kill('SIGKILL'));
    const problems: string[] = [];
    let ok = 0;
    let refused = 0;
    let live = 1;
    const end = Date.now() + RACE_SECONDS * 1000;
    for (let i = 1; Date.now() < end && i < bundles.length; i++) {
      const before = readlinkSync(join(vault, 'current'));
      const r = await sentinel(['deploy', bundles[i]!.path, '--vault', vault]);
      if (r.code === 0) {
        ok += 1;
        live = i + 1;
        const engine = readFileSync(join(vault, 'current', 'tree', 'phi', 'engine.py'), 'utf8');
        if (engine !== bundles[i]!.engine) problems.push(`deploy v${i + 1}: exit 0 but the live engine.py is ${JSON.stringify(engine)}`);
      } else {
        refused += 1;
        if (r.errLines.length !== 1 || !/^sentinel: [a-z-]+: .+/.test(r.errLines[0]!)) problems.push(`deploy v${i + 1}: not one clear error line: ${r.stderr}`);
        if (readlinkSync(join(vault, 'current')) !== before) problems.push(`deploy v${i + 1}: failed (${r.errLines[0]}) but current moved`);
      }
      problems.push(...attackerTraces(join(vault, 'releases')).map((p) => `after v${i + 1}: attacker trace ${p}`));
    }
    const swaps = await attacker.done;
    t.diagnostic(`deploys: ${ok} ok, ${refused} refused; attacker swaps (A B): ${swaps}`);
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.notEqual(swaps.trim(), '0 0', 'the attacker swapped something');
    const verify = await sentinel(['vault', 'verify', vault, '--json']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(readFileSync(join(vault, 'current', 'tree', 'phi', 'engine.py'), 'utf8'), bundles[live - 1]!.engine);
    // With the attacker gone, the next deploy goes through (the refusals left nothing in the way).
    assertOk(await sentinel(['deploy', bundles[live]!.path, '--vault', vault]));
    assert.equal(readFileSync(join(vault, 'current', 'tree', 'phi', 'engine.py'), 'utf8'), bundles[live]!.engine);
    assertOk(await sentinel(['vault', 'verify', vault]));
  });

  it(`heals while staged releases are swapped for ${RACE_SECONDS} s: the signed bytes come back, or one clear error and nothing changed`, { timeout: 120_000 + RACE_SECONDS * 3000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i, renames in staging/)')) return;
    const tv = await makeVault('staging-heal');
    try {
      const b = await tv.bundle(1);
      await tv.vault.deploy(b.path);
      const engineFile = join(tv.path, 'current', 'tree', 'phi', 'engine.py');
      const signed = readFileSync(engineFile, 'utf8');
      const evil = join(tv.path, '..', 'evil');
      mkdirSync(evil);
      const attacker = startAttacker(join(tv.path, 'staging'), evil, RACE_SECONDS);
      t.after(() => attacker.child.kill('SIGKILL'));
      const problems: string[] = [];
      let ok = 0;
      let refused = 0;
      const end = Date.now() + RACE_SECONDS * 1000;
      while (Date.now() < end) {
        // Tamper as root: lift +i, change the file, seal it again.
        run('chattr', ['-i', engineFile]);
        writeFileSync(engineFile, '# tampered\n');
        run('chattr', ['+i', engineFile]);
        const before = readlinkSync(join(tv.path, 'current'));
        try {
          await tv.vault.heal();
          ok += 1;
          const now = readFileSync(engineFile, 'utf8');
          if (now !== signed) problems.push(`heal succeeded but engine.py is ${JSON.stringify(now)}`);
          const v = await tv.vault.verify();
          if (!v.ok) problems.push(`heal succeeded but verify: ${JSON.stringify(v.problems)}`);
        } catch (e) {
          refused += 1;
          if (!isSentinelError(e)) problems.push(`heal failed without a vault error: ${String(e)}`);
          if (readlinkSync(join(tv.path, 'current')) !== before) problems.push(`heal failed (${String(e)}) but current moved`);
        }
        problems.push(...attackerTraces(join(tv.path, 'releases')).map((p) => `attacker trace ${p}`));
      }
      const swaps = await attacker.done;
      t.diagnostic(`heals: ${ok} ok, ${refused} refused; attacker swaps (A B): ${swaps}`);
      assert.deepEqual(problems, [], problems.join('\n'));
      assert.notEqual(swaps.trim(), '0 0', 'the attacker swapped something');
      // With the attacker gone, a heal goes through and the vault verifies.
      if ((await tv.vault.verify()).ok) {
        run('chattr', ['-i', engineFile]);
        writeFileSync(engineFile, '# tampered\n');
        run('chattr', ['+i', engineFile]);
      }
      await tv.vault.heal();
      assert.equal(readFileSync(engineFile, 'utf8'), signed);
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });

  it('staging/ itself moved away at the `staged` step and replaced with a copy of its own: the signed release goes live, never the copy', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i, renames in the vault)')) return;
    const tv = await makeVault('staging-moved');
    try {
      await tv.vault.deploy((await tv.bundle(1)).path);
      const b2 = await tv.bundle(2);
      const staging = join(tv.path, 'staging');
      const away = join(tv.path, '..', 'staging-away');
      let swapped = false;
      const racing = await openVault(tv.path, {
        ...tv.deps,
        hook: (s) => {
          if (s !== 'staged') return Promise.resolve();
          // Root lifts +i on VAULT/ for a moment (as during a live window), moves staging/ away and
          // puts its own in place, holding a copy of the staged release with an engine.py of its own.
          const name = readdirSync(staging).find((n) => /^r[0-9]/.test(n) && !n.endsWith('.bundle'))!;
          run('chattr', ['-i', tv.path]);
          renameSync(staging, away);
          mkdirSync(staging, { mode: 0o700 });
          cpSync(join(away, name), join(staging, name), { recursive: true });
          writeFileSync(join(staging, name, 'tree', 'phi', 'engine.py'), MARK);
          run('chattr', ['+i', tv.path]);
          swapped = true;
          return Promise.resolve();
        },
      });
      let error: unknown = null;
      try {
        await racing.deploy(b2.path);
      } catch (e) {
        error = e;
      }
      assert.ok(swapped, 'the hook ran');
      assert.deepEqual(attackerTraces(join(tv.path, 'releases')), [], 'no attacker byte in a kept release');
      const engine = readFileSync(join(tv.path, 'current', 'tree', 'phi', 'engine.py'), 'utf8');
      if (error === null) assert.match(engine, /# v2\n/, 'the signed v2 is live');
      else {
        assert.ok(isSentinelError(error), (error as Error).message);
        assert.match(engine, /# v1\n/, 'v1 stays live');
      }
      assert.equal((await tv.vault.verify()).ok, true);
    } finally {
      await closeDeps(tv.deps);
    }
  });
});
