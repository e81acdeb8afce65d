// The command tree of `sentinel` (README.md "Commands"): parsing only; each action
// loads its module on demand (fast --help, one clear line if a part is missing) and calls one function.
import { Argument, Command, CommanderError, Option } from 'commander';
import { SentinelError } from '../core/errors.js';
import { examples, positiveInteger } from './args.js';
import { exitHelp } from './exit-table.js';
import { registerDaemonCommands } from './daemon-commands.js';
import { reportFailure, setJsonMode } from './failure.js';
import { packageVersion } from '../adapters/package-root.js';

// Builds the whole `sentinel` program; exported so tests and the demo can inspect it.
export function buildProgram(): Command {
  const program = new Command('sentinel')
    .description('Keep the OmniMind Φ-engine tree immutable (chattr +i) and change it only through Ed25519-signed bundles.')
    .version(packageVersion(), '-V, --version', 'print the sentinel version')
    // Program options only before the command: `sign --version 7` is the release version, not ours.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  program.addHelpText('after', `\nExit codes: 0 success / intact, 1 rejected or integrity violation, 2 usage or environment error,\n3 refused daemon configuration (daemon, reload), 4 no such target (trace, target reset), 5 no eBPF engine in the daemon (trace).\nSet SENTINEL_DEBUG=1 to print stack traces.${examples(['sentinel keygen --out release', 'sentinel vault init /var/lib/omnimind/phi-engine --trust release.pub', 'sentinel sign-and-deploy ./phi-engine --key release.key --vault /var/lib/omnimind/phi-engine', 'sentinel vault verify /var/lib/omnimind/phi-engine --trust /etc/omnimind-sentinel/keys/release.pub', 'sentinel doctor'])}`);

  program
    .command('keygen')
    .description('generate an Ed25519 signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub')
    .requiredOption('--out <prefix>', 'path prefix of the two files, e.g. DIR/release for DIR/release.key and DIR/release.pub (never overwritten; a directory is refused)')
    .option('--comment <text>', 'comment stored in both key files (e.g. who holds the key)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('keygen') + examples(['sentinel keygen --out /media/offline/release-2026 --comment "release key 2026"']))
    .action(async (opts: { out: string; comment?: string; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runKeygen } = await import('./keygen.js');
      await runKeygen(opts);
    });

  const vault = program.command('vault').description('create, check and repair a sealed vault');
  vault
    .command('init')
    .description('create a vault, record its trust policy and seal it (+i)')
    .argument('<vault>', 'directory to create the vault in (must be empty or absent)')
    .requiredOption('--trust <pub...>', 'trusted public key file(s)')
    .option('--threshold <k>', 'distinct trusted signatures required (default 1)', positiveInteger('--threshold'))
    .option('--vault-id <id>', 'vault id bundles must be bound to (default: generated)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('vault init') + examples(['sentinel vault init /var/lib/omnimind/phi-engine --trust alice.pub bob.pub carol.pub --threshold 2']))
    .action(async (path: string, opts: { trust: string[]; threshold?: number; vaultId?: string; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runVaultInit } = await import('./vault-commands.js');
      await runVaultInit(path, opts);
    });
  vault
    .command('verify')
    .description('fail-closed check of the vault: signatures, trust policy, hashes, modes, no missing/extra entries, no xattrs, one link per file, +i everywhere; every kept release and stored bundle too')
    .argument('<vault>', 'vault directory')
    .option('--trust <pub...>', 'trust anchors from outside the vault (instead of the policy stored in it)')
    .option('--threshold <k>', 'threshold for --trust keys (default 1)', positiveInteger('--threshold'))
    .option('--live-only', 'check only the live release in full (not the other kept releases and stored bundles)')
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText('after', `${exitHelp('vault verify')}${examples(['sentinel vault verify /var/lib/omnimind/phi-engine --trust /etc/omnimind-sentinel/keys/release.pub', 'sentinel vault verify /var/lib/omnimind/phi-engine --json | jq .ok'])}`)
    .action(async (path: string, opts: { trust?: string[]; threshold?: number; liveOnly?: boolean; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runVaultVerify } = await import('./vault-commands.js');
      process.exitCode = await runVaultVerify(path, opts);
    });
  vault
    .command('heal')
    .description('re-stage the live release from its stored signed bundle and re-seal it, as the daemon does on a tamper')
    .argument('<vault>', 'vault directory')
    .option('--trust <pub...>', 'trust anchors from outside the vault (the vault.json policy must equal them)')
    .option('--threshold <k>', 'threshold for --trust keys (default 1)', positiveInteger('--threshold'))
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', `\nThe stored bundle is verified first; a damaged one is refused and nothing changes.${exitHelp('vault heal')}${examples(['sentinel vault heal /var/lib/omnimind/phi-engine --trust /etc/omnimind-sentinel/keys/release.pub'])}`)
    .action(async (path: string, opts: { trust?: string[]; threshold?: number; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runVaultHeal } = await import('./vault-commands.js');
      await runVaultHeal(path, opts);
    });
  // Three commands of one shape: VAULT [--json], one runner each in vault-commands.ts.
  const vaultActions = [
    ['status', 'show the live version, release id, signers, seal state and last deploy', 'print the status as JSON on stdout', 'runVaultStatus', exitHelp('vault status')],
    ['rollback', 'go back to the previous signed release still kept in the vault', 'print the result as JSON on stdout', 'runVaultRollback', exitHelp('vault rollback')],
    ['recover', 'finish or undo an interrupted deploy (crash, power loss) and re-seal', 'print the result as JSON on stdout', 'runVaultRecover', exitHelp('vault recover')],
  ] as const;
  for (const [name, description, jsonHelp, runner, exits] of vaultActions) {
    vault
      .command(name)
      .description(description)
      .argument('<vault>', 'vault directory')
      .option('--json', jsonHelp)
      .addHelpText('after', `${exits}${examples([`sentinel vault ${name} /var/lib/omnimind/phi-engine`])}`)
      .action(async (path: string, opts: { json?: boolean }) => {
        setJsonMode(opts.json === true);
        const commands = await import('./vault-commands.js');
        await commands[runner](path, opts);
      });
  }
  vault
    .command('manifest')
    .description('print the live signed manifest, e.g. for a cross-check with coreutils')
    .argument('<vault>', 'vault directory')
    .addOption(new Option('--format <format>', 'output format').choices(['sha256sum', 'json']).default('sha256sum'))
    .addHelpText('after', `\nThe sha256sum form lists paths relative to the live tree.${exitHelp('vault manifest')}${examples(['sentinel vault manifest /var/lib/omnimind/phi-engine > /tmp/phi.sha256 && (cd /var/lib/omnimind/phi-engine/current/tree && sha256sum -c /tmp/phi.sha256)'])}`)
    .action(async (path: string, opts: { format: 'sha256sum' | 'json' }) => {
      const { runVaultManifest } = await import('./vault-commands.js');
      await runVaultManifest(path, opts);
    });

  program
    .command('sign')
    .description('sign a directory tree into one bundle file for a vault')
    .argument('<src_dir>', 'release tree to sign')
    .requiredOption('--key <key...>', 'secret key file(s); one signature each')
    .option('--vault-id <id>', 'id of the vault the bundle is for (this or --vault)')
    .option('--vault <vault>', 'take the vault id from this vault (this or --vault-id)')
    .requiredOption('--version <n>', 'release version (greater than the vault\'s current one)', positiveInteger('--version'))
    .option('--expires-in <duration>', 'how long the bundle may be deployed (s, m, h, d, w)', '30d')
    .requiredOption('--out <bundle>', 'bundle file to write (never overwritten)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('sign') + examples(['sentinel sign ./phi-engine --key release.key --vault-id phi-prod --version 7 --out phi-7.bundle']))
    .action(async (src: string, opts: { key: string[]; vaultId?: string; vault?: string; version: number; expiresIn: string; out: string; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runSign } = await import('./release-commands.js');
      await runSign(src, opts);
    });

  program
    .command('deploy')
    .description('verify a bundle completely, then stage, seal and swap it in as the live release')
    .argument('<bundle>', 'bundle file')
    .option('--vault <vault>', 'deploy directly into this vault (this or --socket)')
    .option('--socket <path>', 'ask the running daemon to deploy it (this or --vault)')
    .option('--trust <pub...>', 'with --vault: trust anchors from outside the vault; a vault.json that differs refuses the deploy')
    .option('--threshold <k>', 'threshold for --trust keys (default 1)', positiveInteger('--threshold'))
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('deploy') + examples(['sentinel deploy phi-7.bundle --vault /var/lib/omnimind/phi-engine --trust /etc/omnimind-sentinel/keys/release.pub', 'sentinel deploy phi-7.bundle --socket /run/omnimind-sentinel/sentinel.sock']))
    .action(async (bundle: string, opts: { vault?: string; socket?: string; trust?: string[]; threshold?: number; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runDeploy } = await import('./deploy-command.js');
      await runDeploy(bundle, opts);
    });

  program
    .command('sign-and-deploy')
    .description('sign a tree and deploy it in one go; the version defaults to the highest the vault has seen + 1')
    .argument('<src_dir>', 'release tree to sign')
    .requiredOption('--key <key...>', 'secret key file(s); one signature each')
    .option('--vault <vault>', 'deploy directly into this vault (this or --socket)')
    .option('--socket <path>', 'deploy through the running daemon (this or --vault)')
    .option('--version <n>', 'release version (default: highest version the vault has seen + 1)', positiveInteger('--version'))
    .option('--expires-in <duration>', 'how long the bundle may be deployed (s, m, h, d, w)', '30d')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('sign-and-deploy') + examples(['sentinel sign-and-deploy ./phi-engine --key release.key --vault /var/lib/omnimind/phi-engine']))
    .action(async (src: string, opts: { key: string[]; vault?: string; socket?: string; version?: number; expiresIn: string; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runSignAndDeploy } = await import('./release-commands.js');
      await runSignAndDeploy(src, opts);
    });

  program
    .command('doctor')
    .description('report what this host supports (root, +i, chattr, cgroups, the eBPF engine loaded for real, systemd) and how to fix what is missing')
    .option('--vault-dir <dir>', 'directory whose filesystem must support +i (default /var/lib/omnimind)')
    .option('--json', 'print the report as JSON on stdout')
    .addOption(new Option('--engine-probe', 'load and attach the BPF object once, print the outcome as JSON (used by doctor itself)').hideHelp())
    .addHelpText('after', `${exitHelp('doctor')}${examples(['sentinel doctor --vault-dir /var/lib/omnimind'])}`)
    .action(async (opts: { vaultDir?: string; json?: boolean; engineProbe?: boolean }) => {
      setJsonMode(opts.json === true);
      if (opts.engineProbe === true) {
        const { probeEngine } = await import('./doctor-ebpf.js');
        process.stdout.write(`${JSON.stringify(probeEngine())}\n`);
        return;
      }
      const { runDoctor } = await import('./doctor.js');
      process.exitCode = await runDoctor(opts);
    });

  program
    .command('demo')
    .description('show the whole mission on a temporary vault (keys, deploy, kernel EPERM, tamper caught, untrusted bundle refused) and a sample backend on port 8000 killed and hung, then recovered')
    .option('--keep', 'keep the temporary vault and keys for a look afterwards')
    .option('--no-recovery', 'skip the backend kill/hang recovery part (that part needs root and python3; it uses the eBPF engine, or /proc polling without it)')
    .addHelpText('after', exitHelp('demo') + examples(['sentinel demo', 'sentinel demo --keep --no-recovery']))
    .action(async (opts: { keep?: boolean; recovery: boolean }) => {
      const { runDemo, vaultDemoSteps } = await import('./demo.js');
      const { recoveryDemoSteps } = await import('./demo/recovery.js');
      process.exitCode = await runDemo({ keep: opts.keep, steps: opts.recovery ? [...vaultDemoSteps, ...recoveryDemoSteps] : vaultDemoSteps });
    });

  registerDaemonCommands(program);

  program
    .command('completion')
    .description('print a shell completion script (bash) built from these commands')
    .addArgument(new Argument('<shell>', 'shell to complete for').choices(['bash']))
    .addHelpText('after', `\nThe package installs it to /usr/share/bash-completion/completions/sentinel.${exitHelp('completion')}${examples(['sentinel completion bash > /etc/bash_completion.d/sentinel', 'source <(sentinel completion bash)'])}`)
    .action(async (shell: string) => {
      const { runCompletion } = await import('./completion.js');
      runCompletion(program, shell);
    });
  // `sentinel --help` is 80 columns wide on any terminal: the build stores this very text and the
  // executable prints it without loading the tree (src/cli/build-assets.ts, src/cli/entry.ts).
  // Set last, so each command's own help still takes the terminal's width.
  program.configureHelp({ helpWidth: TOP_HELP_WIDTH });
  return program;
}

/** The width of `sentinel --help` (see the end of buildProgram). */
export const TOP_HELP_WIDTH = 80;

/** `sentinel --help`'s whole text, as the tree prints it: the build stores it for the executable. */
export function topLevelHelp(program: Command = buildProgram()): string {
  let text = '';
  program.configureOutput({ writeOut: (s) => (text += s) });
  program.outputHelp();
  return text;
}

// Parses argv and runs one command; returns the exit code instead of exiting (testable).
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError && (e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed')) return e.exitCode === 0 ? 0 : 2;
    // A failure before the action ran (commander, or an option parser such as positiveInteger) still owes --json its object.
    if (argv.includes('--json')) setJsonMode(true);
    return reportFailure(e instanceof CommanderError ? new SentinelError('usage', e.message.replace(/^error:\s*/, ''), { cause: e }) : e);
  }
}
