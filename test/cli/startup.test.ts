// Start-up (docs/ARCHITECTURE.md#start-up): each command loads only what it uses. The fast paths a
// shell, cron or a monitoring check runs — `--help`, `vault status`, `vault verify` — load none of
// the large packages the daemon needs, and `--help` loads no vault code at all.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadNative } from '../../src/adapters/native.js';
import { packageRoot } from '../../src/adapters/package-root.js';
import { cleanupAll, sampleTree, tempDir, writeTree } from '../helpers/vault-factory.js';
import { isRoot, needs } from '../helpers/env.js';
import { BIN, CLI, assertOk, sentinel } from '../helpers/cli-harness.js';

const HEAVY = /\/node_modules\/(execa|pino|zod|chokidar|prom-client)\//;
// Node's process and thread modules (child_process pulls in net, dgram and the streams): the fast paths spawn nothing and start no thread.
const PROCESS_OR_THREAD = /^(require:)?(node:)?(child_process|worker_threads)$/;
const hook = join(packageRoot(), 'dist', 'test', 'fixtures', 'module-log.js');

/** Runs the CLI with the module log preloaded; returns its exit code, output and every module it loaded. */
async function loaded(args: string[], dir: string, entry = CLI): Promise<{ code: number | null; stderr: string; modules: string[] }> {
  const log = join(dir, `modules-${args.join('-').replace(/[^a-z0-9-]/gi, '_').slice(0, 60)}.txt`);
  rmSync(log, { force: true });
  const r = await sentinel(args, { entry, env: { NODE_OPTIONS: `--import=${hook}`, SENTINEL_MODULE_LOG: log } });
  const modules = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  return { code: r.code, stderr: r.stderr, modules };
}

describe('cli: start-up loads only what the command uses', () => {
  let dir = '';
  let vault = '';
  let pub = '';
  after(() => cleanupAll());
  before(async () => {
    dir = tempDir('cli-startup');
    if (!isRoot()) return;
    writeTree(join(dir, 'src'), sampleTree('startup'));
    assertOk(await sentinel(['keygen', '--out', join(dir, 'k')]));
    pub = join(dir, 'k.pub');
    vault = join(dir, 'vault');
    assertOk(await sentinel(['vault', 'init', vault, '--trust', pub]));
    assertOk(await sentinel(['sign-and-deploy', join(dir, 'src'), '--key', join(dir, 'k.key'), '--vault', vault]));
  });

  it('the module log sees the large packages where a command does load them (daemon start)', async () => {
    const r = await loaded(['daemon', '--config', join(dir, 'no-such-config.json')], dir);
    assert.equal(r.code, 3, r.stderr); // a configuration the daemon cannot start with exits 3 (docs/DAEMON.md)
    assert.ok(r.modules.some((m) => HEAVY.test(m)), `no large package seen in: ${r.modules.join(' ')}`);
  });

  it('--help loads no large package and no vault code (no native addon, no node:crypto), no child_process or worker_threads', async () => {
    const r = await loaded(['--help'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.modules.filter((m) => HEAVY.test(m)), []);
    assert.deepEqual(r.modules.filter((m) => /sentinel_native\.node$|^require:(node:)?crypto$|^node:crypto$/.test(m)), []);
    assert.deepEqual(r.modules.filter((m) => PROCESS_OR_THREAD.test(m)), []);
  });

  it('vault status and vault verify load no large package, and neither child_process nor worker_threads', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    for (const args of [['vault', 'status', vault], ['vault', 'verify', vault, '--trust', pub]]) {
      const r = await loaded(args, dir);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.modules.length > 0, 'the module log recorded nothing');
      assert.deepEqual(r.modules.filter((m) => HEAVY.test(m)), [], args.join(' '));
      assert.deepEqual(r.modules.filter((m) => PROCESS_OR_THREAD.test(m)), [], args.join(' '));
      // They verify through node:crypto: tweetnacl (signing, fallbacks) is not even loaded.
      assert.deepEqual(r.modules.filter((m) => /tweetnacl/.test(m)), [], args.join(' '));
    }
  });

  it('vault status reads its own bundle and cache (status.cjs), never plain.cjs, from either entry; verify and deploy read plain.cjs, never status.cjs', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const bundles = (modules: string[]): string[] => modules.filter((m) => m.startsWith('open:')).sort();
    for (const entry of [BIN, CLI]) {
      const r = await loaded(['vault', 'status', vault], dir, entry);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(bundles(r.modules), ['open:status.cjs', 'open:status.cjs.cache'], entry);
      const v = await loaded(['vault', 'verify', vault, '--trust', pub], dir, entry);
      assert.equal(v.code, 0, v.stderr);
      assert.deepEqual(bundles(v.modules), ['open:plain.cjs', 'open:plain.cjs.cache'], entry);
      const d = await loaded(['deploy', join(dir, 'no-such.bundle'), '--vault', vault], dir, entry);
      assert.notEqual(d.code, 0, 'a missing bundle is refused');
      assert.deepEqual(bundles(d.modules), ['open:plain.cjs', 'open:plain.cjs.cache'], entry);
    }
  });

  it('status.cjs holds none of the verify and deploy code (runners, the vault\'s verify and deploy, the hash pool), plain.cjs holds it', () => {
    const cli = join(packageRoot(), 'dist', 'src', 'cli');
    const modules = (name: string): string[] => [...readFileSync(join(cli, name), 'utf8').matchAll(/^\/\/ (src\/[\w/.-]+\.ts)$/gm)].map((m) => m[1]!);
    const others = ['src/cli/plain-verify.ts', 'src/cli/plain-deploy.ts', 'src/cli/early-verify.ts', 'src/vault/verify.ts', 'src/vault/deploy.ts', 'src/vault/index.ts', 'src/adapters/hash.ts', 'src/adapters/hash-worker.ts'];
    const status = modules('status.cjs');
    assert.ok(status.includes('src/cli/plain-status.ts') && status.includes('src/vault/status.ts') && status.includes('src/vault/open.ts'), status.join(' '));
    assert.deepEqual(status.filter((m) => others.includes(m)), []);
    assert.deepEqual(others.filter((m) => !modules('plain.cjs').includes(m)), []);
  });

  it('vault status with the native addon loads no node:crypto (the addon checks the bundle\'s cache, the signatures and the hashes), from either entry; without the addon it does', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    if (needs(t, typeof loadNative()?.ed25519Verify === 'function', 'native addon with ed25519Verify (npm ci builds native/)')) return;
    const crypto = /^(require:)?(node:)?crypto$/;
    for (const entry of [BIN, CLI]) {
      const r = await loaded(['vault', 'status', vault], dir, entry);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.modules.some((m) => /sentinel_native\.node$/.test(m)), `the addon was not loaded: ${r.modules.join(' ')}`);
      assert.deepEqual(r.modules.filter((m) => crypto.test(m)), [], entry);
    }
    const log = join(dir, 'modules-no-native.txt');
    rmSync(log, { force: true });
    const r = await sentinel(['vault', 'status', vault], { entry: BIN, env: { NODE_OPTIONS: `--import=${hook}`, SENTINEL_MODULE_LOG: log, SENTINEL_NO_NATIVE: '1' } });
    assert.equal(r.code, 0, r.stderr);
    const modules = readFileSync(log, 'utf8').split('\n');
    assert.ok(modules.some((m) => crypto.test(m)), 'without the addon node:crypto checks them');
    assert.ok(!modules.some((m) => /sentinel_native\.node$/.test(m)), 'SENTINEL_NO_NATIVE=1 loads no addon, not even for the cache check');
  });

  it('vault status reads the vault blocking: node:fs/promises (readline, the fs watchers) is never loaded, from either entry; verify still loads it', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const fsPromises = /^(require:)?(node:)?fs\/promises$/;
    for (const entry of [BIN, CLI]) {
      const r = await loaded(['vault', 'status', vault], dir, entry);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.modules.includes('open:status.cjs'), `the plain runner answered: ${r.modules.join(' ')}`);
      assert.deepEqual(r.modules.filter((m) => fsPromises.test(m)), [], entry);
    }
    const v = await loaded(['vault', 'verify', vault, '--trust', pub], dir, BIN);
    assert.equal(v.code, 0, v.stderr);
    assert.ok(v.modules.some((m) => fsPromises.test(m)), `the module log sees node:fs/promises required: ${v.modules.join(' ')}`);
  });

  it('vault status and vault verify through the executable write their answer (text, --json, a failure\'s object) through fd 1 without making process.stdout; deploy makes it', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const missing = join(dir, 'no-such-vault');
    const forms = [
      ['vault', 'status', vault],
      ['vault', 'status', vault, '--json'],
      ['vault', 'status', missing, '--json'],
      ['vault', 'verify', vault, '--trust', pub],
      ['vault', 'verify', vault, '--trust', pub, '--live-only', '--json'],
      ['vault', 'verify', missing, '--trust', pub, '--json'],
    ];
    for (const args of forms) {
      const r = await loaded(args, dir, BIN);
      if (args[2] === missing) assert.notEqual(r.code, 0, `${args.join(' ')}: a missing vault is refused`);
      else assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.modules.length > 0 && !r.modules.some((m) => m.endsWith('/main.js')), `the plain runner answered: ${r.modules.join(' ')}`);
      assert.deepEqual(r.modules.filter((m) => m === 'stream:stdout'), [], args.join(' '));
    }
    const d = await loaded(['deploy', join(dir, 'no-such.bundle'), '--vault', vault], dir, BIN);
    assert.notEqual(d.code, 0, 'a missing bundle is refused');
    assert.ok(d.modules.includes('stream:stdout'), `the module log sees process.stdout made: ${d.modules.join(' ')}`);
  });

  it('the plain vault verify through the executable still colours its answer on a terminal (script(1)), and not into /dev/null or a pipe', (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    if (needs(t, spawnSync('script', ['--version']).status === 0, 'script(1) (util-linux)')) return;
    const esc = '\x1b[';
    const env = { ...process.env, TERM: 'xterm', NO_COLOR: '', FORCE_COLOR: '' };
    const line = `${BIN} vault verify ${vault} --trust ${pub}`;
    const tty = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', env });
    assert.ok(tty.stdout.includes(esc) && tty.stdout.includes('intact'), `coloured on a terminal: ${JSON.stringify(tty.stdout)}`);
    const piped = spawnSync('sh', ['-c', `${line} | cat`], { encoding: 'utf8', env });
    assert.ok(piped.stdout.includes('intact') && !piped.stdout.includes(esc), `plain into a pipe: ${JSON.stringify(piped.stdout)}`);
    const devNull = spawnSync('sh', ['-c', `${line} >/dev/null; echo status=$?`], { encoding: 'utf8', env });
    assert.equal(devNull.stdout, 'status=0\n', devNull.stderr);
  });

  it('vault status\'s answer to a full non-blocking pipe arrives whole after what was in it (through the stream), exit 0; a reader gone early is no failure', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const want = await sentinel(['vault', 'status', vault], { entry: BIN });
    assert.equal(want.code, 0, want.stderr);
    // python3: a pipe made non-blocking and filled before the executable starts; read only after a pause.
    const script = [
      'import os, subprocess, sys, time',
      'r, w = os.pipe()',
      'os.set_blocking(w, False)',
      'filled = 0',
      'while True:',
      '    try: filled += os.write(w, b"x" * 4096)',
      '    except BlockingIOError: break',
      'p = subprocess.Popen(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)',
      'os.close(w)',
      'time.sleep(0.5)',
      'out = b""',
      'while True:',
      '    b = os.read(r, 65536)',
      '    if not b: break',
      '    out += b',
      'err = p.stderr.read()',
      'sys.stdout.write("%d %d %d\\n" % (p.wait(), filled, len(err)))',
      'sys.stdout.buffer.write(out[filled:])',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, BIN, 'vault', 'status', vault], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [head, ...rest] = r.stdout.split('\n');
    const [code, filled, errBytes] = head!.split(' ').map(Number);
    assert.ok(filled! > 0, 'the pipe was full before the answer');
    assert.deepEqual({ code, errBytes, out: rest.join('\n') }, { code: 0, errBytes: 0, out: want.stdout });
    const gone = spawnSync('bash', ['-c', `set -o pipefail; "${BIN}" vault status "${vault}" | true; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    assert.equal(gone.stderr, '', 'nothing on stderr when the reader of stdout is gone');
    assert.match(gone.stdout, /status=0/);
  });

  it('the executable (sentinel.cjs, the package bin) prints --help and -h as the tree does, loading neither main.js nor any chunk, node:crypto or the addon', async () => {
    const tree = await sentinel(['--help']);
    assert.equal(tree.code, 0, tree.stderr);
    assert.match(tree.stdout, /^Usage: sentinel \[options\] \[command\]\n/);
    for (const flag of ['--help', '-h']) {
      const r = await sentinel([flag], { entry: BIN });
      assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 0, stdout: tree.stdout, stderr: '' }, flag);
      const l = await loaded([flag], dir, BIN);
      assert.equal(l.code, 0, l.stderr);
      assert.ok(l.modules.length > 0, 'the module log recorded nothing');
      assert.deepEqual(l.modules.filter((m) => /\/(main\.js|sentinel-[A-Z0-9]+\.js|plain\.cjs)$|^open:|sentinel_native\.node$|^require:(node:)?crypto$/.test(m)), [], flag);
    }
  });

  it('the executable answers the plain vault forms and every other command exactly as main.js does', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const forms = [
      ['vault', 'status', vault],
      ['vault', 'status', vault, '--json'],
      ['vault', 'status', join(dir, 'no-such-vault')],
      ['vault', 'status', '--json', vault],
      ['vault', 'verify', vault, '--trust', pub],
      ['vault', 'verify', vault, '--trust', join(dir, 'no-such.pub'), '--json'],
      ['--version'],
      ['vault', '--help'],
      ['no-such-command'],
    ];
    for (const args of forms) {
      const a = await sentinel(args, { entry: BIN });
      const b = await sentinel(args);
      assert.deepEqual({ code: a.code, stdout: a.stdout, stderr: a.stderr }, { code: b.code, stdout: b.stdout, stderr: b.stderr }, args.join(' '));
    }
    // The plain status runs from the runners' bundle without the ES module loader reaching main.js.
    const l = await loaded(['vault', 'status', vault], dir, BIN);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(l.modules.filter((m) => m.endsWith('/main.js')), []);
  });

  it('a command that signs loads tweetnacl when it first uses it (the bundle requires it lazily)', async () => {
    const r = await loaded(['keygen', '--out', join(dir, 'k2')], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.modules.includes('require:tweetnacl'), r.modules.join(' '));
  });

  it('every file of the CLI bundle is ASCII, so V8 scans it as one-byte text', () => {
    const cli = join(packageRoot(), 'dist', 'src', 'cli');
    const files = readdirSync(cli).filter((n) => n === 'main.js' || n === 'plain.cjs' || n === 'status.cjs' || n === 'sentinel.cjs' || /^sentinel-[A-Z0-9]+\.js$/.test(n));
    assert.ok(files.includes('status.cjs') && files.includes('plain.cjs'), `bundle files: ${files.join(' ')}`);
    assert.ok(files.length > 10, `bundle files: ${files.join(' ')}`);
    for (const name of files) {
      const at = readFileSync(join(cli, name), 'utf8').search(/[^\0-\x7f]/);
      assert.equal(at, -1, `${name}: a character outside ASCII at ${at}`);
    }
  });

  it('vault status VAULT [--json] skips the command tree and answers exactly as through it (the form with -- goes through it)', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const cli = join(packageRoot(), 'dist', 'src', 'cli');
    const tree = readdirSync(cli).filter((n) => /^sentinel-[A-Z0-9]+\.js$/.test(n) && readFileSync(join(cli, n), 'utf8').includes('// node_modules/commander/'));
    assert.ok(tree.length > 0, 'no bundle file holds commander');
    const loadsTree = (modules: string[]): boolean => modules.some((m) => tree.some((n) => m.endsWith(`/${n}`)));
    for (const path of [vault, join(dir, 'no-such-vault'), pub]) {
      for (const [direct, through] of [
        [['vault', 'status', path], ['vault', 'status', '--', path]],
        [['vault', 'status', path, '--json'], ['vault', 'status', '--json', path]],
      ]) {
        const a = await loaded(direct!, dir);
        const b = await loaded(through!, dir);
        assert.equal(loadsTree(a.modules), false, direct!.join(' '));
        assert.equal(loadsTree(b.modules), true, through!.join(' '));
        const fast = await sentinel(direct!);
        const slow = await sentinel(through!);
        assert.deepEqual({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, { code: slow.code, stdout: slow.stdout, stderr: slow.stderr }, direct!.join(' '));
      }
    }
  });

  it('vault status VAULT without the native addon (chattr, lsattr and flock(1) as child processes) answers as through the tree', async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const env = { SENTINEL_NO_NATIVE: '1' };
    for (const [direct, through] of [
      [['vault', 'status', vault], ['vault', 'status', '--', vault]],
      [['vault', 'status', vault, '--json'], ['vault', 'status', '--json', vault]],
    ]) {
      const fast = await sentinel(direct!, { env });
      const slow = await sentinel(through!, { env });
      assert.equal(fast.code, 0, fast.stderr);
      assert.deepEqual({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, { code: slow.code, stdout: slow.stdout, stderr: slow.stderr }, direct!.join(' '));
    }
  });
});
