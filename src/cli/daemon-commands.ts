import type { Command } from 'commander';

// Why: the CLI entry point imports this to add the daemon-related subcommands in one place.
export function registerDaemonCommands(program: Command): void {
  void program;
}
