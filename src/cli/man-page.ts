// The sentinel(1) man page, generated at build time from each command's own --help (so the page
// and the help never disagree), plus the sections a man page has beyond the help.
import type { Command } from 'commander';

/** Help lines are wrapped at this width so that man's indentation still fits 80 columns. */
const HELP_WIDTH = 72;

// Roff for a literal line: backslashes escaped, a leading dot or quote made inert.
function roffLine(line: string): string {
  const escaped = line.replace(/\\/g, '\\e');
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function roffText(text: string): string {
  return text.split('\n').map(roffLine).join('\n');
}

// The full --help output of one command (usage, options, the examples added after it).
function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), getOutHelpWidth: () => HELP_WIDTH, getOutHasColors: () => false });
  cmd.configureHelp({ helpWidth: HELP_WIDTH });
  cmd.outputHelp();
  return text.trimEnd();
}

function walk(cmd: Command, path: string[], out: { path: string[]; cmd: Command }[]): void {
  for (const sub of cmd.commands) {
    const p = [...path, sub.name()];
    out.push({ path: p, cmd: sub });
    walk(sub, p, out);
  }
}

// Renders sentinel(1); `program` is the CLI's own command tree (buildProgram()).
export function renderManPage(program: Command, version: string): string {
  const commands: { path: string[]; cmd: Command }[] = [];
  walk(program, [program.name()], commands);
  const sections = commands.map(({ path, cmd }) => `.SS "${path.join(' ')}"\n${roffLine(cmd.description())}\n.PP\n.nf\n${roffText(helpOf(cmd))}\n.fi`);
  return `.\\" Generated at build time from the commands' own --help; do not edit.
.TH SENTINEL 1 "" "omnimind-sentinel ${version}" "User Commands"
.SH NAME
sentinel \\- keep the OmniMind \\(*F-engine tree immutable and change it only through signed bundles
.SH SYNOPSIS
.B sentinel
.I command
.RI [ options ]
.br
.B sentinel
.RB [ \\-V | \\-\\-version ]
.RB [ \\-h | \\-\\-help ]
.SH DESCRIPTION
${roffLine(program.description())}
A vault is a directory sealed with the kernel's immutable flag (\\fBchattr +i\\fR); it changes only
through Ed25519-signed bundles from trusted keys.
The same program runs the daemon (\\fBomnimind-sentinel.service\\fR) that watches the vault, heals
tampering, keeps the OmniMind services alive and reports to systemd.
.PP
.nf
${roffText(helpOf(program))}
.fi
.SH COMMANDS
${sections.join('\n')}
.SH EXIT STATUS
.TP
.B 0
success; the vault is intact
.TP
.B 1
rejected or integrity violation (bad or missing signature, untrusted key, rollback, expired, tampered or unsealed file)
.TP
.B 2
usage or environment error (bad arguments, missing file, not permitted, filesystem without +i; \\fBvault verify\\fR of a vault with no release deployed yet)
.TP
.B 3
the daemon's configuration was refused (\\fBdaemon\\fR, \\fBreload\\fR; the unit does not restart it)
.TP
.B 4
no such target (\\fBtrace\\fR)
.TP
.B 5
the daemon has no eBPF engine (\\fBtrace\\fR; the message says why)
.PP
Every failure prints one line on standard error: \\fBsentinel: \\fIcode\\fB: \\fImessage\\fB (\\fIwhere\\fB)\\fR.
With \\fB\\-\\-json\\fR the result, or \\fB{"ok": false, "error": ...}\\fR, is one JSON document on standard output.
.SH ENVIRONMENT
.TP
.B NO_COLOR
when set and not empty, no colour in the output (colour is used only on a terminal).
.TP
.B FORCE_COLOR
when set and not 0, colour even when the output is not a terminal.
.TP
.B SENTINEL_DEBUG
set to 1 to print a stack trace after the error line.
.TP
.B SENTINEL_NO_NATIVE
set to 1 to use chattr/lsattr and systemd-notify instead of the native addon.
.SH FILES
.TP
.I /etc/omnimind-sentinel/sentinel.json
the daemon's configuration
.TP
.I /etc/omnimind-sentinel/keys/
trusted public keys (\\fI*.pub\\fR)
.TP
.I /var/lib/omnimind/phi-engine
the vault (default path)
.TP
.I /var/lib/omnimind-sentinel/
the daemon's state (inbox, incoming bundles)
.TP
.I /var/log/omnimind-sentinel/audit.log
the hash-chained audit log (kept \\fBchattr +a\\fR)
.TP
.I /run/omnimind-sentinel/sentinel.sock
the daemon's control socket (the default \\fB--socket\\fR of status, reload, trace and target reset)
.SH SEE ALSO
.BR chattr (1),
.BR lsattr (1),
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.service (5)
.PP
The project's documentation: README.md and docs/ (installed under /usr/share/doc/omnimind-sentinel/ by the package).
`;
}
