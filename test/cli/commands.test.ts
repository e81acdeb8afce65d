// The `sentinel` commands end to end through the real compiled CLI as root on a real vault in /tmp:
// keygen files and refusals, the release flow, --json shapes, sha256sum interop, usage errors
// (--socket through a daemon, doctor and demo: socket-doctor-demo.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { testKey } from '../helpers/core-factory.js';
import { cleanupAll, liveTree, sampleTree, snapshot, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { BIN, CLI, assertFails, assertOk, closeInProcessCli, sentinel, sentinelInProcess, writeKeyFiles } from '../helpers/cli-harness.js';

const root = isRoot();
let base = '';

after(() => cleanupAll());
after(() => closeInProcessCli());

describe('cli: keygen', () => {
  before(() => {
    base = tempDir('cli-cmd');
  });

  it('writes PREFIX.key with mode 0600 and PREFIX.pub, and refuses to overwrite either', async () => {
    const prefix = join(base, 'release');
    const r = await sentinel(['keygen', '--out', prefix, '--comment', 'ci key', '--json']);
    assertOk(r);
    const out = JSON.parse(r.stdout) as { ok: boolean; keyId: string; secretKey: string; publicKey: string };
    assert.equal(out.ok, true);
    assert.match(out.keyId, /^[0-9a-f]{16}$/);
    assert.equal(statSync(`${prefix}.key`).mode & 0o777, 0o600);
    const secret = readFileSync(`${prefix}.key`, 'utf8');
    const pub = readFileSync(`${prefix}.pub`, 'utf8');
    assert.match(pub, new RegExp(`^omnimind-sentinel-ed25519-public-v1 ${out.keyId} `));
    assert.match(secret, new RegExp(`^omnimind-sentinel-ed25519-secret-v1 ${out.keyId} `));
    assertFails(await sentinel(['keygen', '--out', prefix]), 'exists');
    assert.equal(readFileSync(`${prefix}.key`, 'utf8'), secret, 'secret key untouched');
    assert.equal(readFileSync(`${prefix}.pub`, 'utf8'), pub, 'public key untouched');
    const onlyPub = join(base, 'only-pub');
    writeFileSync(`${onlyPub}.pub`, 'placeholder\n');
    assertFails(await sentinel(['keygen', '--out', onlyPub]), 'exists');
    assert.equal(existsSync(`${onlyPub}.key`), false, 'no secret key written when the .pub exists');
    assertFails(await sentinel(['keygen', '--out', join(base, 'no', 'such', 'dir', 'k')]), 'not-found');
  });

  it('two keys from two runs differ (fresh randomness)', async () => {
    const a = JSON.parse((await sentinel(['keygen', '--out', join(base, 'a'), '--json'])).stdout) as { keyId: string };
    const b = JSON.parse((await sentinel(['keygen', '--out', join(base, 'b'), '--json'])).stdout) as { keyId: string };
    assert.notEqual(a.keyId, b.keyId);
  });

  it('a full filesystem (ENOSPC while writing) leaves no half-written key file behind', async (t) => {
    if (needs(t, root, 'root (mounts a 4 KiB tmpfs)')) return;
    const mnt = tempDir('cli-full');
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', mnt], { encoding: 'utf8' });
    assert.equal(m.status, 0, `mount tmpfs: ${m.stderr}`);
    try {
      writeFileSync(join(mnt, 'fill'), Buffer.alloc(4096));
      const r = await sentinel(['keygen', '--out', join(mnt, 'k')]);
      assertFails(r, 'io');
      assert.match(r.errLines[0] ?? '', new RegExp(`\\(${join(mnt, 'k')}\\.key\\)$`), 'the error names the key file');
      assert.deepEqual(readdirSync(mnt).sort(), ['fill'], 'neither k.key nor k.pub left behind');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

// Parsing only: each case runs through the CLI's entry function in this process (sentinelInProcess).
describe('cli: usage errors and help', () => {
  it('usage errors exit 2 with one line; --json usage errors still print JSON', async () => {
    for (const args of [['no-such-command'], ['keygen'], ['sign', '/tmp', '--key', 'k', '--vault-id', 'x', '--version', 'abc', '--out', '/tmp/x'], ['sign', '/tmp', '--key', 'k', '--vault-id', 'x', '--version', '0', '--out', '/tmp/x'], ['deploy', '/tmp/b'], ['deploy', '/tmp/b', '--vault', '/tmp/v', '--socket', '/tmp/s'], ['sign', '/tmp', '--key', 'k', '--version', '1', '--out', '/tmp/x'], ['vault', 'manifest', '/tmp/v', '--format', 'md5'], ['sign-and-deploy', '/tmp', '--key', 'k', '--vault', '/tmp/v', '--expires-in', 'soon']]) {
      assertFails(await sentinelInProcess(args), 'usage');
    }
    assertFails(await sentinelInProcess(['status', '--socket', '/tmp/no-such-sentinel.sock', '--timeout', 'soon']), 'usage');
    for (const args of [['vault', 'verify', '--json'], ['sign', '/tmp', '--key', 'k', '--vault-id', 'x', '--version', 'abc', '--out', '/tmp/x', '--json']]) {
      const j = await sentinelInProcess(args);
      assertFails(j, 'usage');
      assert.deepEqual((JSON.parse(j.stdout) as { ok: boolean; error: { code: string } }).error.code, 'usage', `${args.join(' ')}: stdout ${j.stdout}`);
    }
  });

  it('--help of each command exits 0 and shows examples', async () => {
    for (const args of [['--help'], ['vault', '--help'], ['audit', '--help']]) {
      const r = await sentinelInProcess(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: sentinel/);
      assert.match(r.stdout, /Commands:/);
    }
    const commands = [['keygen'], ['sign'], ['deploy'], ['sign-and-deploy'], ['doctor'], ['demo'], ['daemon'], ['status'], ['install-units'], ['completion'], ['audit', 'verify'], ...['init', 'verify', 'status', 'rollback', 'recover', 'manifest'].map((c) => ['vault', c])];
    for (const args of commands) {
      const r = await sentinelInProcess([...args, '--help']);
      assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: sentinel ${args.join(' ')} `), args.join(' '));
      assert.match(r.stdout, /Examples:\n {2}\$ sentinel /, `${args.join(' ')} --help has examples (README promises them)`);
    }
  });

  it('--help of daemon and vault status names their exit codes (the unit and monitoring checks act on them)', async () => {
    for (const [args, codes] of [[['daemon'], /\nExit: 0 [^\n]*, 1 [^\n]*, 2 [^\n]*, 3 [^\n]*configuration[^\n]*\n/], [['vault', 'status'], /\nExit: 0 [^\n]*, 1 [^\n]*, 2 [^\n]*not a vault[^\n]*\n/]] as const) {
      for (const entry of [BIN, CLI]) {
        const r = await sentinel([...args, '--help'], { entry });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, codes, `${entry} ${args.join(' ')} --help:\n${r.stdout}`);
      }
    }
  });

  it('--socket to a daemon that is not running: unavailable, exit 2', async () => {
    const dir = tempDir('cli-nosock');
    writeFileSync(join(dir, 'some.bundle'), 'OMSBNDL1');
    assertFails(await sentinel(['deploy', join(dir, 'some.bundle'), '--socket', join(dir, 'no-daemon.sock')]), 'unavailable');
    assertFails(await sentinel(['deploy', join(dir, 'missing.bundle'), '--socket', join(dir, 'no-daemon.sock')]), 'not-found');
  });
});

describe('cli: the release flow on a real vault', { concurrency: false }, () => {
  const k = testKey('cli-flow');
  const other = testKey('cli-flow-other');
  let dir = '';
  let vault = '';
  let keys: { key: string; pub: string };
  let otherKeys: { key: string; pub: string };

  before(() => {
    if (!root) return;
    dir = tempDir('cli-flow');
    keys = writeKeyFiles(dir, 'release', k);
    otherKeys = writeKeyFiles(dir, 'other', other);
    vault = join(dir, 'vault');
    writeTree(join(dir, 'src-1'), sampleTree('one'));
    writeTree(join(dir, 'src-2'), sampleTree('two'));
  });

  it('vault init --json, a raw base64 public key accepted as a trust anchor', async (t) => {
    if (needs(t, root, 'root')) return;
    const raw = join(dir, 'raw.pub');
    writeFileSync(raw, `${Buffer.from(k.public.key).toString('base64')}\n`);
    const r = await sentinel(['vault', 'init', vault, '--trust', raw, '--vault-id', 'cli-flow', '--json']);
    assertOk(r);
    const out = JSON.parse(r.stdout) as { ok: boolean; vaultId: string; threshold: number; trust: string[] };
    assert.deepEqual({ ok: out.ok, vaultId: out.vaultId, threshold: out.threshold, trust: out.trust }, { ok: true, vaultId: 'cli-flow', threshold: 1, trust: [k.public.id] });
    assertFails(await sentinel(['vault', 'init', vault, '--trust', keys.pub]), 'exists');
  });

  it('sign-and-deploy picks version 1 then 2; deploy --json; status --json', async (t) => {
    if (needs(t, root, 'root')) return;
    const r1 = await sentinel(['sign-and-deploy', join(dir, 'src-1'), '--key', keys.key, '--vault', vault, '--json']);
    assertOk(r1);
    assert.equal((JSON.parse(r1.stdout) as { version: number }).version, 1);
    const r2 = await sentinel(['sign-and-deploy', join(dir, 'src-2'), '--key', keys.key, '--vault', vault]);
    assertOk(r2);
    assert.match(r2.stdout, /deployed version 2/);
    const st = await sentinel(['vault', 'status', vault, '--json']);
    assertOk(st);
    const status = JSON.parse(st.stdout) as { ok: boolean; version: number; sealed: boolean; signers: string[]; highestVersion: number; releaseId: string };
    assert.equal(status.ok, true);
    assert.equal(status.version, 2);
    assert.equal(status.sealed, true);
    assert.deepEqual(status.signers, [k.public.id]);
    assert.equal(status.highestVersion, 2);
    const human = await sentinel(['vault', 'status', vault]);
    assertOk(human);
    assert.match(human.stdout, /version 2/);
  });

  it('vault verify shows a progress bar on a TTY (stderr), never with --json', (t) => {
    if (needs(t, root, 'root')) return;
    const hasScript = spawnSync('script', ['--version']).status === 0;
    if (needs(t, hasScript, 'script(1) from util-linux for a pseudo-terminal')) return;
    const onTty = (args: string[]) => spawnSync('script', ['-qec', [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    const human = onTty(['vault', 'verify', vault]);
    assert.equal(human.status, 0, human.stdout);
    assert.match(human.stdout, /verifying \[[#.]+\] +\d+%/);
    assert.match(human.stdout, /is intact/);
    const json = onTty(['vault', 'verify', vault, '--json']);
    assert.equal(json.status, 0, json.stdout);
    assert.doesNotMatch(json.stdout, /verifying \[/);
    assert.equal((JSON.parse(json.stdout.replace(/\r/g, '')) as { ok: boolean }).ok, true);
  });

  it('vault manifest --format sha256sum is accepted by the real sha256sum -c in the live tree', async (t) => {
    if (needs(t, root, 'root')) return;
    const m = await sentinel(['vault', 'manifest', vault, '--format', 'sha256sum']);
    assertOk(m);
    const lines = m.stdout.trimEnd().split('\n');
    assert.ok(lines.length >= 4, 'one line per file');
    for (const l of lines) assert.match(l, /^[0-9a-f]{64} {2}\S/);
    const list = join(dir, 'live.sha256');
    writeFileSync(list, m.stdout);
    const c = spawnSync('sha256sum', ['-c', '--strict', list], { cwd: liveTree(vault), encoding: 'utf8' });
    assert.equal(c.status, 0, `sha256sum -c failed: ${c.stdout}${c.stderr}`);
    assert.equal(c.stdout.trim().split('\n').filter((l) => l.endsWith(': OK')).length, lines.length);
    const j = await sentinel(['vault', 'manifest', vault, '--format', 'json']);
    assertOk(j);
    const manifest = JSON.parse(j.stdout) as { format: string; vaultId: string; version: number; entries: { path: string }[] };
    assert.equal(manifest.vaultId, 'cli-flow');
    assert.equal(manifest.version, 2);
    assert.ok(manifest.entries.some((e) => e.path === 'phi/engine.py'));
  });

  it('vault verify: intact (0, --json ok), then a root tamper found (1, --json ok:false with the problem), flag lifted', async (t) => {
    if (needs(t, root, 'root')) return;
    const ok = await sentinel(['vault', 'verify', vault, '--trust', keys.pub, '--json']);
    assertOk(ok);
    const report = JSON.parse(ok.stdout) as { ok: boolean; version: number; problems: unknown[]; checkedFiles: number; trustSource: string };
    assert.equal(report.ok, true);
    assert.equal(report.version, 2);
    assert.deepEqual(report.problems, []);
    assert.equal(report.trustSource, 'override');
    assert.ok(report.checkedFiles >= 4);
    const file = join(liveTree(vault), 'config', 'phi.json');
    const chattr = (flag: string): void => assert.equal(spawnSync('chattr', [flag, file]).status, 0, `chattr ${flag} ${file}`);
    chattr('-i');
    writeFileSync(file, '{"tag":"bad"}\n');
    chattr('+i');
    const bad = await sentinel(['vault', 'verify', vault, '--json']);
    assertFails(bad, 'hash-mismatch');
    const badReport = JSON.parse(bad.stdout) as { ok: boolean; problems: { code: string; path: string }[]; error: { code: string; exitCode: number } };
    assert.equal(badReport.ok, false);
    assert.ok(badReport.problems.some((p) => p.code === 'hash-mismatch' && p.path.endsWith('config/phi.json')), JSON.stringify(badReport.problems));
    assert.deepEqual([badReport.error.code, badReport.error.exitCode], ['hash-mismatch', 1]);
    const human = await sentinel(['vault', 'verify', vault]);
    assertFails(human, 'hash-mismatch');
    assert.match(human.stdout, /NOT intact/);
    chattr('-i');
    const gone = await sentinel(['vault', 'verify', vault]);
    assertFails(gone, ['hash-mismatch', 'unsealed']);
    assert.match(gone.stdout, /unsealed/);
  });

  it('vault verify with an outside trust anchor that does not trust the signer: exit 1', async (t) => {
    if (needs(t, root, 'root')) return;
    assertFails(await sentinel(['vault', 'verify', vault, '--trust', otherKeys.pub]), 'untrusted-key');
  });

  it('vault rollback goes to version 1 (signed), vault recover reports nothing to do', async (t) => {
    if (needs(t, root, 'root')) return;
    const r = await sentinel(['vault', 'rollback', vault, '--json']);
    assertOk(r);
    assert.equal((JSON.parse(r.stdout) as { version: number }).version, 1);
    const v = await sentinel(['vault', 'verify', vault, '--live-only']);
    assertOk(v);
    // The whole vault is not intact: release 2, tampered above, is still kept (and named).
    const all = await sentinel(['vault', 'verify', vault]);
    assertFails(all, ['hash-mismatch', 'unsealed']);
    assert.match(all.stdout, /releases\/r00000002-[0-9a-f]+\/tree\/config\/phi\.json/);
    const before = snapshot(vault);
    const rec = await sentinel(['vault', 'recover', vault]);
    assertOk(rec);
    assert.match(rec.stdout, /nothing to recover/);
    assert.deepEqual(snapshot(vault), before);
    const again = await sentinel(['sign-and-deploy', join(dir, 'src-2'), '--key', keys.key, '--vault', vault, '--json']);
    assertOk(again);
    assert.equal((JSON.parse(again.stdout) as { version: number }).version, 3, 'the next version is above the highest ever seen, not the live one');
  });

  it('sign refuses a secret key readable by others, and refuses to overwrite --out', async (t) => {
    if (needs(t, root, 'root')) return;
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, readFileSync(keys.key), { mode: 0o644 });
    spawnSync('chmod', ['644', loose]);
    assertFails(await sentinel(['sign', join(dir, 'src-1'), '--key', loose, '--vault', vault, '--version', '9', '--out', join(dir, 'x.bundle')]), 'not-permitted');
    const out = join(dir, 'taken.bundle');
    writeFileSync(out, 'mine');
    assertFails(await sentinel(['sign', join(dir, 'src-1'), '--key', keys.key, '--vault', vault, '--version', '9', '--out', out]), 'exists');
    assert.equal(readFileSync(out, 'utf8'), 'mine');
    assertFails(await sentinel(['sign', join(dir, 'src-1'), '--key', keys.pub, '--vault', vault, '--version', '9', '--out', join(dir, 'y.bundle')]), 'usage');
  });

  it('sign names its byte count as the bundle\'s size, and verify --trust says the trust came from --trust', async (t) => {
    if (needs(t, root, 'root')) return;
    const out = join(dir, 'sized.bundle');
    const r = await sentinel(['sign', join(dir, 'src-1'), '--key', keys.key, '--vault', vault, '--version', '9', '--out', out]);
    assertOk(r);
    assert.match(r.stdout, new RegExp(`, bundle ${String(statSync(out).size)} bytes,`), r.stdout);
    // --live-only: an earlier case here left release 2 tampered on purpose.
    const v = await sentinel(['vault', 'verify', vault, '--live-only', '--trust', keys.pub]);
    assertOk(v);
    assert.match(v.stdout, /; trust from --trust$/m, v.stdout);
    assert.match((await sentinel(['vault', 'verify', vault, '--live-only'])).stdout, /; trust from vault\.json$/m);
  });
});

describe('cli: the one error line holds against hostile names', () => {
  it('vault verify: an extra file whose name holds a newline still gives one stderr line', async (t) => {
    if (needs(t, root, 'root')) return;
    const dir = tempDir('cli-newline');
    const keys = writeKeyFiles(dir, 'release', testKey('cli-newline'));
    const vault = join(dir, 'vault');
    writeTree(join(dir, 'src'), sampleTree('newline'));
    assertOk(await sentinel(['vault', 'init', vault, '--trust', keys.pub]));
    assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', keys.key, '--vault', vault]));
    const tree = liveTree(vault);
    assert.equal(spawnSync('chattr', ['-i', tree]).status, 0);
    writeFileSync(join(tree, 'evil\nsentinel: ok: forged second line'), '');
    assert.equal(spawnSync('chattr', ['+i', tree]).status, 0);
    const r = await sentinel(['vault', 'verify', vault]);
    assertFails(r, 'tampered');
    assert.match(r.errLines[0] ?? '', /evil sentinel: ok: forged second line/);
  });
});
