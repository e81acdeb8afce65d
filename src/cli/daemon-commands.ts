// The daemon-side commands: `daemon`, `status`, `trace`, `reload`, `target reset`, `audit verify`, `install-units`.
import type { Command } from 'commander';
import { examples, positiveInteger } from './args.js';
import { exitHelp } from './exit-table.js';
import { SentinelError } from '../core/errors.js';
import type { TargetResetFlags } from './target-commands.js';
import type { DaemonReply } from './daemon-reply.js';
import type { Logger } from '../adapters/logger.js';

/** The control socket the shipped unit binds (control.socket's default): every command that asks the daemon uses it unless told otherwise. */
const UNIT_SOCKET = '/run/omnimind-sentinel/sentinel.sock';
import { reportFailure, setJsonMode } from './failure.js';

interface DaemonFlags {
  config?: string;
  vault?: string;
  trust?: string[];
  socket?: string;
  inbox?: string;
  auditLog?: string;
  stateDir?: string;
  logLevel?: string;
}

// Why: runs until SIGTERM; exit 0 after a clean stop, 1/2 when start-up fails (bad vault, environment),
// 3 when the configuration is refused (the unit's RestartPreventExitStatus=1 3: no restart loop on a typo or a
// tampered vault), 2 for a crash (an error escaping every handler, whatever its code: the unit restarts it).
// The signal handlers come first: a SIGTERM while it starts (even while the daemon's modules load) is held
// and ends in the same clean stop, exit 0.
async function runDaemonCommand(opts: DaemonFlags): Promise<never> {
  const { DaemonSignals, isStoppedWhileStarting } = await import('../daemon/signals.js');
  const signals = new DaemonSignals().install();
  const { installCrashExit } = await import('../daemon/crash.js');
  let log: Logger | null = null;
  installCrashExit(() => log);
  const { startDaemon } = await import('../daemon/main.js');
  let code: number;
  try {
    const handle = await startDaemon({
      configFile: opts.config,
      flags: { vault: opts.vault, trust: opts.trust, socket: opts.socket, inbox: opts.inbox, audit: opts.auditLog, stateDir: opts.stateDir, logLevel: opts.logLevel },
      signals,
    });
    log = handle.log;
    code = await handle.exited;
  } catch (e) {
    const { EXIT_CONFIG, isConfigRejection } = await import('../daemon/config.js');
    if (isStoppedWhileStarting(e)) code = 0;
    else {
      code = reportFailure(e);
      if (isConfigRejection(e)) code = EXIT_CONFIG;
    }
  }
  process.exit(code);
}

// Why: `sentinel status --socket PATH`: what the daemon reports about the vault, the watchdog and each target.
async function runStatus(opts: { socket: string; json?: boolean; timeout: number }): Promise<number> {
  const { sendRequest } = await import('../adapters/control-client.js');
  const { daemonError } = await import('./daemon-reply.js');
  const reply = (await sendRequest(opts.socket, { op: 'status' }, { timeoutMs: opts.timeout })) as DaemonReply<Record<string, unknown>>;
  if (reply.ok !== true || reply.result === undefined) throw daemonError(reply.error, opts.socket, 'malformed reply');
  const r = reply.result;
  if (opts.json === true) {
    process.stdout.write(`${JSON.stringify({ ok: true, ...r })}\n`);
    return 0;
  }
  const { describeDaemonStatus } = await import('./status-text.js');
  const { paint } = await import('./style.js');
  const lines = describeDaemonStatus(r, paint());
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

// Why: `sentinel audit verify FILE...`: exit 0 when the chain holds (across the files, in order: a log moved away
// and the one that continues it), 1 with the file and line number of the first break.
async function runAuditVerify(files: string[], opts: { json?: boolean }): Promise<number> {
  const { verifyAuditFile } = await import('../adapters/audit-log.js');
  let state: Awaited<ReturnType<typeof verifyAuditFile>> | null = null;
  let lines = 0;
  for (const file of files) {
    state = await verifyAuditFile(file, state === null ? undefined : { seq: state.nextSeq, prev: state.lastHash });
    lines += state.lines;
  }
  const last = state?.lastHash ?? '';
  if (opts.json === true) process.stdout.write(`${JSON.stringify({ ok: true, file: files[files.length - 1], files, lines, lastHash: last })}\n`);
  else process.stdout.write(`audit log intact: ${String(lines)} lines${files.length > 1 ? ` in ${String(files.length)} files` : ''}, head ${last.slice(0, 16)}\n`);
  return 0;
}

interface InstallUnitsFlags { prefix: string; uninstall?: boolean; keepFiles?: boolean; node?: string; cli?: string; reload: boolean; json?: boolean; sampleBackend?: boolean }

// Why: a documented install path for users: units copied with this host's node and CLI paths; --uninstall removes them.
async function runInstallUnits(opts: InstallUnitsFlags): Promise<number> {
  if (opts.keepFiles === true && opts.uninstall !== true) throw new SentinelError('usage', '--keep-files goes with --uninstall', { where: '--keep-files' });
  const { installUnits, uninstallUnits } = await import('../daemon/install-units.js');
  const result: { files: string[]; warnings: string[]; disabled?: string[]; stopped?: string[] } = opts.uninstall === true ? await uninstallUnits({ prefix: opts.prefix, reload: opts.reload, keepFiles: opts.keepFiles }) : await installUnits({ prefix: opts.prefix, node: opts.node, cli: opts.cli, reload: opts.reload, sampleBackend: opts.sampleBackend });
  if (opts.json === true) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else {
    for (const u of result.disabled ?? []) process.stdout.write(`stopped and disabled ${u}\n`);
    for (const f of result.files) process.stdout.write(`${opts.uninstall === true ? 'removed' : 'installed'} ${f}\n`);
    for (const u of result.stopped ?? []) process.stdout.write(`stopped ${u}\n`);
  }
  for (const w of result.warnings) process.stderr.write(`sentinel: warning: ${w}\n`);
  return 0;
}

// Why: the CLI entry point imports this to add the daemon-related subcommands in one place.
export function registerDaemonCommands(program: Command): void {
  program
    .command('daemon')
    .description('run the guardian: deploys over the control socket and inbox, tamper watch and healing, systemd watchdog')
    .option('--config <file>', 'configuration file (docs/CONFIG.md)')
    .option('--vault <dir>', 'vault directory (overrides vault.path)')
    .option('--trust <pub...>', 'trusted public key file(s) (overrides vault.trust)')
    .option('--socket <path>', 'control socket path (overrides control.socket)')
    .option('--inbox <dir>', 'inbox directory watched for *.bundle files (overrides vault.inbox)')
    .option('--audit-log <file>', 'audit log file (overrides audit.path)')
    .option('--state-dir <dir>', 'daemon state directory (overrides stateDir)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .addHelpText('after', `${exitHelp('daemon')}${examples(['sentinel daemon --config /etc/omnimind-sentinel/sentinel.json', 'sentinel daemon --vault /var/lib/omnimind/phi-engine --trust /etc/omnimind-sentinel/keys/release.pub --socket /run/omnimind-sentinel/sentinel.sock'])}`)
    .action(async (opts: DaemonFlags) => {
      await runDaemonCommand(opts);
    });

  program
    .command('status')
    .description('ask a running daemon about the vault, the watchdog and each target (with its PID)')
    .option('--socket <path>', 'control socket of the daemon', UNIT_SOCKET)
    .option('--timeout <ms>', 'how long to wait for the reply', positiveInteger('--timeout'), 10_000)
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText('after', exitHelp('status') + examples(['sentinel status --socket /run/omnimind-sentinel/sentinel.sock', 'sentinel status --socket /run/omnimind-sentinel/sentinel.sock --json']))
    .action(async (opts: { socket: string; json?: boolean; timeout: number }) => {
      setJsonMode(opts.json === true);
      process.exitCode = await runStatus(opts);
    });

  const target = program.command('target').description('the targets (services) a running daemon keeps alive');
  target
    .command('reset')
    .description('give a target a fresh restart budget; a failed (budget spent) or down target is recovered, and the command waits until it runs')
    .argument('<name>', 'target name, as in the configuration\'s targets[].name')
    .option('--socket <path>', 'control socket of the daemon', UNIT_SOCKET)
    .option('--timeout <ms>', 'how long to wait for the reply and for the target to run again', positiveInteger('--timeout'), 60_000)
    .option('--no-wait', 'return once the recovery has started')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      `${exitHelp('target reset')}${examples(['sentinel target reset backend --socket /run/omnimind-sentinel/sentinel.sock', 'sentinel target reset mcp-worker --socket /run/omnimind-sentinel/sentinel.sock --no-wait --json'])}`,
    )
    .action(async (name: string, opts: TargetResetFlags) => {
      setJsonMode(opts.json === true);
      const { runTargetReset } = await import('./target-commands.js');
      process.exitCode = await runTargetReset(name, opts);
    });

  program
    .command('trace')
    .description('live view of each traced target from the daemon\'s eBPF engine: syscall-latency histogram (log2 microseconds), slow syscalls, and how long its main thread has been away from its wait syscall (stall time)')
    .argument('[target]', 'only this target (targets[].name)')
    .option('--socket <path>', 'control socket of the daemon', UNIT_SOCKET)
    .option('--once', 'print one snapshot and exit')
    .option('--json', 'print one snapshot as JSON on stdout and exit')
    .option('--interval <ms>', 'refresh period of the live view', positiveInteger('--interval'), 1000)
    .option('--timeout <ms>', 'how long to wait for each reply', positiveInteger('--timeout'), 10_000)
    .addHelpText(
      'after',
      `\nTargets are traced when they configure "stall" or "syscalls" (docs/EBPF.md).${exitHelp('trace')}${examples(['sentinel trace --socket /run/omnimind-sentinel/sentinel.sock', 'sentinel trace backend --socket /run/omnimind-sentinel/sentinel.sock --once', 'sentinel trace --socket /run/omnimind-sentinel/sentinel.sock --json | jq .targets[0].histogram'])}`,
    )
    .action(async (name: string | undefined, opts: { socket: string; once?: boolean; json?: boolean; interval: number; timeout: number }) => {
      setJsonMode(opts.json === true);
      const { runTrace } = await import('./trace-command.js');
      process.exitCode = await runTrace(name, opts);
    });

  program
    .command('reload')
    .description('ask the running daemon to re-read its configuration and wait for the verdict (the unit\'s ExecReload=)')
    .option('--socket <path>', 'control socket of the daemon', UNIT_SOCKET)
    .option('--timeout <ms>', 'how long to wait for the verdict', positiveInteger('--timeout'), 30_000)
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', `${exitHelp('reload')}${examples(['systemctl reload omnimind-sentinel', 'sentinel reload --socket /run/omnimind-sentinel/sentinel.sock'])}`)
    .action(async (opts: { socket: string; timeout: number; json?: boolean }) => {
      setJsonMode(opts.json === true);
      const { runReload } = await import('./reload-command.js');
      process.exitCode = await runReload(opts);
    });

  const audit = program.command('audit').description('the daemon audit log');
  audit
    .command('verify')
    .description('check the hash chain of an audit log (exit 1 with the line number of the first break); several files are checked as one chain, oldest first')
    .argument('<file...>', 'audit log file(s), oldest first')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('audit verify') + examples(['sentinel audit verify /var/log/omnimind-sentinel/audit.log', 'sentinel audit verify audit.log.replaced-2026-01-02T03-04-05-000Z audit.log']))
    .action(async (files: string[], opts: { json?: boolean }) => {
      setJsonMode(opts.json === true);
      process.exitCode = await runAuditVerify(files, opts);
    });

  program
    .command('install-units')
    .description('install the systemd units (omnimind-sentinel.service, omnimind.slice, omnimind-backend.socket, omnimind-backend.service running OmniMind\'s web.backend.main:app)')
    .option('--prefix <dir>', 'unit directory', '/etc/systemd/system')
    .option('--uninstall', 'stop and disable the services (a package\'s too), remove the installed units, then stop omnimind.slice (unless a unit of your own still runs in it)')
    .option('--keep-files', 'with --uninstall: stop and disable, but leave the unit files (what removing the package does; a purge removes them)')
    .option('--node <path>', 'node executable for ExecStart (default: this node)')
    .option('--cli <path>', 'sentinel CLI script for ExecStart (default: this one)')
    .option('--sample-backend', 'make omnimind-backend.service run the sample FastAPI backend of this package (a drop-in) and install omnimind-mcp-worker.service, the sample MCP worker')
    .option('--no-reload', 'do not run systemctl (daemon-reload; with --uninstall also no stop and disable)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', exitHelp('install-units') + examples(['sentinel install-units', 'sentinel install-units --sample-backend', 'sentinel install-units --uninstall']))
    .action(async (opts: InstallUnitsFlags) => {
      setJsonMode(opts.json === true);
      process.exitCode = await runInstallUnits(opts);
    });
}
