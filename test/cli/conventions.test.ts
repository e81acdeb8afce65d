// CLI conventions through the real compiled `sentinel`: --version, bash completion run by a real bash,
// the generated man page rendered by man(1), NO_COLOR on a real terminal (script(1)), and a human
// `status` against a real daemon (no raw JSON, the full release id).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot, packageVersion } from '../../src/adapters/package-root.js';
import { buildProgram } from '../../src/cli/program.js';
import { BIN, CLI, assertFails, closeInProcessCli, sentinel, sentinelInProcess } from '../helpers/cli-harness.js';
import { cleanupDaemonFiles, startTestDaemon } from '../helpers/daemon-harness.js';
import { isRoot, needs } from '../helpers/env.js';
import { tempDir } from '../helpers/vault-factory.js';
import type { Command } from 'commander';

after(() => cleanupDaemonFiles());
after(() => closeInProcessCli());

const version = (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;

function commandPaths(cmd: Command, path: string[] = []): string[][] {
  return cmd.commands.flatMap((c) => [[...path, c.name()], ...commandPaths(c, [...path, c.name()])]);
}

describe('cli conventions', () => {
  it('a reader that goes away (sentinel --help | true) ends the output quietly: no EPIPE line, exit status kept', () => {
    // `true` closes the pipe before anything is written; the real executable, as a shell runs it.
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" --help | true; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    assert.equal(r.stderr, '', 'nothing on stderr when the reader of stdout is gone');
    assert.match(r.stdout, /status=0/);
  });

  it('--version and -V print the package version; a command\'s own --version stays its option', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await sentinelInProcess([flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
    }
    assert.equal(packageVersion(), version);
    const dir = tempDir('cli-version');
    // `sign --version 0` reaches sign's own parser (a usage error naming --version), not the program's flag.
    const r = await sentinelInProcess(['sign', dir, '--key', join(dir, 'k'), '--vault-id', 'x', '--version', '0', '--out', join(dir, 'b')]);
    assertFails(r, 'usage');
    assert.match(r.stderr, /--version must be a positive integer/);
  });

  it('the CLI is executable, so a symlink on PATH runs it; the package bin is sentinel.cjs', () => {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.equal(join(packageRoot(), pkg.bin.sentinel!), BIN);
    for (const entry of [CLI, BIN]) {
      assert.notEqual(statSync(entry).mode & 0o111, 0, `${entry} has its x bits (set by npm run build)`);
      const dir = tempDir('cli-path');
      spawnSync('ln', ['-s', entry, join(dir, 'sentinel')]);
      const r = spawnSync('sentinel', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('bash completion, sourced into a real bash, offers commands, subcommands, options and choices', async () => {
    const gen = spawnSync(process.execPath, [CLI, 'completion', 'bash'], { encoding: 'utf8' });
    assert.equal(gen.status, 0, gen.stderr);
    const dir = tempDir('cli-completion');
    const script = join(dir, 'sentinel.bash');
    writeFileSync(script, gen.stdout);
    assert.equal(readFileSync(join(packageRoot(), 'dist', 'share', 'bash-completion', 'completions', 'sentinel'), 'utf8'), gen.stdout, 'the build installs the same script');
    const complete = (...words: string[]): string[] => {
      const r = spawnSync('bash', ['-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _sentinel; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', script, 'sentinel', ...words], { encoding: 'utf8', cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '', 'no bash error');
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    const top = complete('');
    for (const name of buildProgram().commands.map((c) => c.name())) assert.ok(top.includes(name), `top level offers ${name}: ${top.join(' ')}`);
    assert.deepEqual(complete('vault', 've'), ['verify']);
    assert.deepEqual(complete('vault', 'init', '--t').sort(), ['--threshold', '--trust']);
    assert.deepEqual(complete('vault', 'manifest', 'x', '--format', '').sort(), ['json', 'sha256sum']);
    assert.deepEqual(complete('completion', ''), ['bash']);
    assert.deepEqual(complete('--vers'), ['--version']);
    assert.deepEqual(complete('deploy', '--vault', 'sentinel.b'), ['sentinel.bash'], 'a path option completes file names');
    assertFails(await sentinelInProcess(['completion', 'fish']), 'usage');
  });

  it('the man page is generated from every command\'s --help and renders without warnings', () => {
    const page = join(packageRoot(), 'dist', 'share', 'man', 'man1', 'sentinel.1');
    const roff = readFileSync(page, 'utf8');
    assert.match(roff, new RegExp(`omnimind-sentinel ${version.replace(/\./g, '\\.')}`));
    const r = spawnSync('man', ['--warnings', '-l', page], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', `man warnings: ${r.stderr}`);
    for (const path of commandPaths(buildProgram())) {
      assert.ok(r.stdout.includes(`sentinel ${path.join(' ')}`), `man page has a section for ${path.join(' ')}`);
    }
    for (const flag of ['--vault-id', '--expires-in', '--no-recovery', '--uninstall', '--format']) assert.ok(r.stdout.includes(flag), `man page names ${flag}`);
    assert.match(r.stdout, /NO_COLOR/);
  });

  it('every exit code the commands use (3 refused configuration, 4 and 5 of trace) is in --help and the man page, as in the README', async () => {
    const help = (await sentinelInProcess(['--help'])).stdout;
    const page = spawnSync('man', ['-l', join(packageRoot(), 'dist', 'share', 'man', 'man1', 'sentinel.1')], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MANPAGER: 'cat', PAGER: 'cat' } }).stdout;
    const exitStatus = page.slice(page.indexOf('EXIT STATUS'), page.indexOf('ENVIRONMENT'));
    for (const [code, what] of [['3', /refused/], ['4', /no such target/], ['5', /no eBPF engine/]] as const) {
      assert.match(help, new RegExp(`\\b${code} [^,.;]*${what.source}`), `--help names exit ${code}:\n${help}`);
      assert.match(exitStatus, new RegExp(`^\\s+${code}\\s+.*${what.source}`, 'm'), `the man page's EXIT STATUS names ${code}:\n${exitStatus}`);
    }
  });

  it('colour on a terminal (script(1)) but not with NO_COLOR, not in a pipe, and FORCE_COLOR in a pipe', (t) => {
    if (needs(t, spawnSync('script', ['--version']).status === 0, 'script(1) (util-linux)')) return;
    const esc = '\x1b[';
    const onTty = (env: Record<string, string>): string => {
      const r = spawnSync('script', ['-qec', `${process.execPath} ${CLI} doctor`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'xterm', ...env } });
      return r.stdout;
    };
    const noEnv = { NO_COLOR: '', FORCE_COLOR: '' };
    assert.ok(onTty(noEnv).includes(esc), 'doctor on a TTY is coloured');
    assert.ok(!onTty({ ...noEnv, NO_COLOR: '1' }).includes(esc), 'NO_COLOR=1 turns colour off on a TTY');
    const piped = spawnSync(process.execPath, [CLI, 'doctor'], { encoding: 'utf8', env: { ...process.env, ...noEnv } });
    assert.ok(!piped.stdout.includes(esc), 'no colour into a pipe');
    const forced = spawnSync(process.execPath, [CLI, 'doctor'], { encoding: 'utf8', env: { ...process.env, ...noEnv, FORCE_COLOR: '1' } });
    assert.ok(forced.stdout.includes(esc), 'FORCE_COLOR=1 colours a pipe');
    const json = spawnSync(process.execPath, [CLI, 'doctor', '--json'], { encoding: 'utf8', env: { ...process.env, ...noEnv, FORCE_COLOR: '1' } });
    assert.ok(!json.stdout.includes(esc), 'never colour in --json');
  });

  it('status is human text: no raw JSON, the full release id', { timeout: 60_000 }, async (t) => {
    if (needs(t, isRoot(), 'root (chattr +i)')) return;
    const d = await startTestDaemon('cli-status', { protection: { slice: 'sentinel-test-status.slice' } });
    try {
      const r = await sentinel(['status', '--socket', d.socket], { env: { NO_COLOR: '1' } });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /[{}[\]]|":/, `no JSON in: ${r.stdout}`);
      const st = await d.handle.sentinel.status();
      assert.ok(st.releaseId !== null && st.releaseId.length > 16);
      assert.ok(r.stdout.includes(st.releaseId), `full release id ${st.releaseId} in: ${r.stdout}`);
      assert.match(r.stdout, /^vault: .* intact/m);
      assert.match(r.stdout, /^watchdog: not under systemd/m);
    } finally {
      await d.handle.stop('test');
    }
  });
});
