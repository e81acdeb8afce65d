// Each command of the tree has an exit list and its --help prints it (src/cli/exit-table.ts, one table for the help
// and this test), and each command really returns each code it lists, in runs made here against real vaults, keys,
// daemons and unit directories; no run returns a code its list lacks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { COMMAND_EXITS, exitHelp } from '../../src/cli/exit-table.js';
import { buildProgram } from '../../src/cli/program.js';
import { BIN, CLI, sentinel, type CliResult } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, startTestDaemon, waitFor } from '../helpers/daemon-harness.js';
import { isRoot, needs } from '../helpers/env.js';

after(() => cleanupDaemonFiles());

/** The codes each command was seen to return here, with the run that returned it. */
const seen = new Map<string, Map<number, string>>();

async function run(command: string, args: string[], expected: number, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await sentinel([...command.split(' '), ...args], { timeoutMs: 120_000, env });
  const what = `sentinel ${command} ${args.join(' ')}`;
  assert.equal(r.code, expected, `${what}: exit ${String(r.code)}, expected ${String(expected)}\n${r.stdout}\n${r.stderr}`);
  assert.ok(COMMAND_EXITS[command]?.some(([c]) => c === expected), `${what} returned ${String(expected)}, which its --help does not list`);
  const codes = seen.get(command) ?? new Map<number, string>();
  codes.set(expected, what);
  seen.set(command, codes);
  return r;
}

function scratch(label: string): string {
  return mkdtempSync(join(tmpdir(), `sentinel-exits-${label}-`));
}

function removeScratch(dir: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', '-a', dir]);
  rmSync(dir, { recursive: true, force: true });
}

// Every command a user can run, by the name typed (`vault rollback`): the tree itself, so a new command without a list fails here.
function leafCommands(cmd: Command, prefix: string[] = []): string[] {
  return cmd.commands.flatMap((c) => (c.commands.length > 0 ? leafCommands(c, [...prefix, c.name()]) : [[...prefix, c.name()].join(' ')]));
}

test('every command has an exit list (one table), and no list names a command that does not exist', () => {
  const commands = leafCommands(buildProgram()).sort();
  assert.deepEqual(commands.filter((c) => COMMAND_EXITS[c] === undefined), [], 'commands whose --help has no exit list');
  assert.deepEqual(Object.keys(COMMAND_EXITS).filter((c) => !commands.includes(c)), [], 'exit lists of no command');
});

test('every listed command prints its exit list in --help, through both entries', async () => {
  for (const command of Object.keys(COMMAND_EXITS)) {
    const line = exitHelp(command).trim();
    for (const entry of [BIN, CLI]) {
      const r = await sentinel([...command.split(' '), '--help'], { entry });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.split('\n').includes(line), `${entry} ${command} --help has its exit list:\n${line}\n--- got:\n${r.stdout}`);
    }
  }
});

test('keygen, vault init, sign, deploy, sign-and-deploy, vault verify, status, heal and doctor return each code they list', async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const dir = scratch('vault');
  try {
    const k = join(dir, 'k');
    const k2 = join(dir, 'k2');
    await run('keygen', ['--out', k], 0);
    await run('keygen', ['--out', k2], 0);
    await run('keygen', ['--out', k], 2);
    const v = join(dir, 'v');
    const w = join(dir, 'w');
    await run('vault init', [v, '--trust', `${k}.pub`], 0);
    await run('vault init', [w, '--trust', `${k}.pub`], 0);
    mkdirSync(join(dir, 'open'));
    chmodSync(join(dir, 'open'), 0o777);
    await run('vault init', [join(dir, 'open', 'v'), '--trust', `${k}.pub`], 1);
    await run('vault init', [join(dir, 'v9'), '--trust', `${k}.key`], 2);
    await run('vault heal', [w], 2);
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'phi.py'), 'phi = 1\n');
    const fifoTree = join(dir, 'fifo-tree');
    mkdirSync(fifoTree);
    assert.equal(spawnSync('mkfifo', [join(fifoTree, 'pipe')]).status, 0);
    const b1 = join(dir, 'b1.bundle');
    await run('sign', [src, '--key', `${k}.key`, '--vault', v, '--version', '1', '--out', b1], 0);
    await run('sign', [fifoTree, '--key', `${k}.key`, '--vault', v, '--version', '1', '--out', join(dir, 'fifo.bundle')], 1);
    await run('sign', [src, '--key', `${k}.pub`, '--vault', v, '--version', '1', '--out', join(dir, 'pub.bundle')], 2);
    await run('deploy', [b1, '--vault', w], 1);
    await run('deploy', [join(dir, 'none.bundle'), '--vault', v], 2);
    await run('deploy', [b1, '--vault', v], 0);
    await run('sign-and-deploy', [src, '--key', `${k}.key`, '--vault', v], 0);
    await run('sign-and-deploy', [src, '--key', `${k2}.key`, '--vault', v], 1);
    await run('sign-and-deploy', [src, '--key', `${k}.pub`, '--vault', v], 2);
    await run('vault verify', [v, '--trust', `${k}.pub`], 0);
    await run('vault verify', [v, '--trust', `${k2}.pub`], 1);
    await run('vault verify', [join(dir, 'nothing')], 2);
    await run('vault status', [v], 0);
    await run('vault status', [join(dir, 'nothing')], 2);
    await run('vault heal', [v, '--trust', `${k2}.pub`], 1);
    // A tamper: the seals lifted and a file changed; status sees the unsealed tree, heal restores it.
    const live = join(v, 'current', 'tree', 'phi.py');
    assert.equal(spawnSync('chattr', ['-i', live, join(v, 'current', 'tree')]).status, 0);
    writeFileSync(live, 'phi = 666\n');
    await run('vault status', [v], 1);
    await run('vault heal', [v, '--trust', `${k}.pub`], 0);
    await run('doctor', ['--vault-dir', dir], 0);
    writeFileSync(join(dir, 'a-file'), '');
    await run('doctor', ['--vault-dir', join(dir, 'a-file')], 2);
  } finally {
    removeScratch(dir);
  }
});

test('daemon, status, reload, target reset, trace and audit verify return each code they list', async (t) => {
  if (needs(t, isRoot(), 'root (the daemon seals its vault)')) return;
  const dir = scratch('daemon');
  const d = await startTestDaemon('exit-lists', { targets: [{ name: 'svc', command: ['sleep', '600'] }] });
  const bare = await startTestDaemon('exit-lists-bare');
  const noEngine = await startTestDaemon('exit-lists-noengine', { targets: [{ name: 'svc', command: ['sleep', '600'], stall: {} }] }, {}, { bpfObject: '/nonexistent/sentinel.bpf.o' });
  let child: ReturnType<typeof spawn> | null = null;
  try {
    const none = join(dir, 'none.sock');
    await run('status', ['--socket', d.socket], 0);
    await run('status', ['--socket', none], 2);
    await run('target reset', ['svc', '--socket', d.socket], 0);
    await run('target reset', ['nope', '--socket', d.socket], 4);
    await run('target reset', ['svc', '--socket', none], 2);
    await run('trace', ['--socket', bare.socket, '--once'], 0);
    await run('trace', ['--socket', none, '--once'], 2);
    await run('trace', ['nope', '--socket', d.socket, '--once'], 4);
    await run('trace', ['svc', '--socket', noEngine.socket, '--once'], 5);
    await run('reload', ['--socket', d.socket], 0);
    const good = readFileSync(d.configPath, 'utf8');
    writeFileSync(d.configPath, '{ "vault": ');
    await run('reload', ['--socket', d.socket], 3);
    writeFileSync(d.configPath, good);
    await run('reload', ['--socket', none], 2);
    await run('audit verify', [d.auditPath], 0);
    const broken = join(dir, 'audit.log');
    copyFileSync(d.auditPath, broken);
    writeFileSync(broken, readFileSync(broken, 'utf8').replace('"kind":"start"', '"kind":"stop"'));
    await run('audit verify', [broken], 1);
    await run('audit verify', [join(dir, 'absent.log')], 2);
    // The daemon itself: refused configuration, busy (another daemon serves the socket), a vault below a directory others can write, a clean stop.
    writeFileSync(join(dir, 'bad.json'), '{ "vault": ');
    await run('daemon', ['--config', join(dir, 'bad.json')], 3);
    await run('daemon', ['--config', d.configPath], 2);
    assert.equal((await sentinel(['keygen', '--out', join(dir, 'k')])).code, 0);
    mkdirSync(join(dir, 'p'), { mode: 0o755 });
    const v = join(dir, 'p', 'v');
    assert.equal((await sentinel(['vault', 'init', v, '--trust', join(dir, 'k.pub')])).code, 0);
    const flags = ['--vault', v, '--trust', join(dir, 'k.pub'), '--socket', join(dir, 'run', 's.sock'), '--audit-log', join(dir, 'log', 'audit.log'), '--state-dir', join(dir, 'state')];
    chmodSync(join(dir, 'p'), 0o777);
    await run('daemon', flags, 1);
    chmodSync(join(dir, 'p'), 0o755);
    child = spawn(process.execPath, [CLI, 'daemon', ...flags, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    const started = child;
    const exited = new Promise<number | null>((r) => started.on('exit', (code) => r(code)));
    // Its `ready` line is logged once the signal handlers are in place.
    await waitFor('the daemon ready', 30_000, () => (/"event":"ready"/.test(stdout) ? true : null));
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 0, `a clean stop on SIGTERM: ${stderr}`);
    seen.get('daemon')?.set(0, 'sentinel daemon (SIGTERM)');
  } finally {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all([d.handle.stop('test'), bare.handle.stop('test'), noEngine.handle.stop('test')]);
    removeScratch(dir);
  }
});

test('vault rollback, recover and manifest, install-units, demo and completion return each code they list', { timeout: 240_000 }, async (t) => {
  if (needs(t, isRoot(), 'root (chattr +i)')) return;
  const dir = scratch('more');
  try {
    const k = join(dir, 'k');
    assert.equal((await sentinel(['keygen', '--out', k])).code, 0);
    const src = join(dir, 'src');
    mkdirSync(src);
    // Two vaults below a directory of root's own: v for the plain runs, w for a rollback target tampered with.
    const p = join(dir, 'p');
    mkdirSync(p, { mode: 0o755 });
    const v = join(p, 'v');
    const w = join(p, 'w');
    for (const vault of [v, w]) {
      assert.equal((await sentinel(['vault', 'init', vault, '--trust', `${k}.pub`])).code, 0);
      for (const content of ['phi = 1\n', 'phi = 2\n']) {
        writeFileSync(join(src, 'phi.py'), content);
        assert.equal((await sentinel(['sign-and-deploy', src, '--key', `${k}.key`, '--vault', vault])).code, 0);
      }
    }
    const empty = join(dir, 'empty');
    assert.equal((await sentinel(['vault', 'init', empty, '--trust', `${k}.pub`])).code, 0);
    const nothing = join(dir, 'nothing');
    await run('vault manifest', [v], 0);
    await run('vault manifest', [empty], 2);
    await run('vault recover', [v], 0);
    await run('vault recover', [nothing], 2);
    await run('vault rollback', [v], 0);
    await run('vault rollback', [v], 2);
    // The release to go back to lost a seal and a byte: refused, nothing changed.
    const older = readdirSync(join(w, 'releases')).sort()[0] ?? 'none';
    const olderTree = join(w, 'releases', older, 'tree');
    assert.equal(spawnSync('chattr', ['-i', join(olderTree, 'phi.py'), olderTree]).status, 0);
    writeFileSync(join(olderTree, 'phi.py'), 'phi = 666\n');
    await run('vault rollback', [w], 1);
    // A vault below a directory others can write.
    chmodSync(p, 0o777);
    await run('vault manifest', [v], 1);
    await run('vault recover', [v], 1);
    chmodSync(p, 0o755);
    // Units into a directory of the test's own; --no-reload: the host's systemd is not asked.
    const units = join(dir, 'units');
    await run('install-units', ['--prefix', units, '--no-reload'], 0);
    await run('install-units', ['--prefix', units, '--uninstall', '--no-reload'], 0);
    await run('install-units', ['--prefix', units, '--keep-files'], 2);
    await run('install-units', ['--prefix', units, '--node', join(dir, 'no-node'), '--no-reload'], 2);
    await run('completion', ['bash'], 0);
    await run('completion', ['zsh'], 2);
    await run('demo', ['--no-recovery'], 0);
    // Its temporary vault below a directory others can write (TMPDIR without the sticky bit), or no TMPDIR at all.
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await run('demo', ['--no-recovery'], 1, { TMPDIR: open });
    await run('demo', ['--no-recovery'], 2, { TMPDIR: nothing });
  } finally {
    removeScratch(dir);
  }
});

test('no command lists a code it was not seen to return', (t) => {
  if (needs(t, isRoot(), 'root (the runs above)')) return;
  for (const [command, list] of Object.entries(COMMAND_EXITS)) {
    const codes = seen.get(command);
    assert.deepEqual([...(codes?.keys() ?? [])].sort(), list.map(([c]) => c).sort(), `${command}: listed ${list.map(([c]) => c).join(', ')}; seen ${[...(codes?.entries() ?? [])].map(([c, w]) => `${String(c)} (${w})`).join('; ')}`);
  }
});
