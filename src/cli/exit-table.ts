// Each command's exit codes and what each means for it: its --help prints this list (exitHelp), so the two
// cannot drift, and test/cli/exit-lists.test.ts makes each command return each code it lists. The codes
// themselves: README.md "Commands" (0 success, 1 rejected or integrity violation, 2 usage or environment,
// 3 refused daemon configuration, 4 no such target, 5 no eBPF engine in the daemon).

type ExitList = readonly (readonly [code: number, meaning: string])[];

const ASK_DAEMON = 'no daemon on the socket (or it did not answer within --timeout), bad usage';
const DEPLOY_REJECTED = "rejected, the vault unchanged: a bad or missing signature, an untrusted key, too few signers, a rollback, expired, for another vault, a malformed bundle, a hash or size mismatch; the vault's own policy differs from --trust, or its path or layout is unsafe or tampered (insecure-path, tampered)";
const VAULT_UNSAFE = "the vault's path or layout is unsafe or tampered (insecure-path, tampered)";
const VAULT_ENV = 'not a vault, unreadable, not permitted (not root), busy';
const DEPLOY_ENV = 'bad arguments, a missing or unreadable file, a secret key where a public key belongs (or the reverse), not a vault, no daemon on --socket, not permitted (not root), busy';

/** The exit list of each command, by its name as typed (`vault verify`, `target reset`). */
export const COMMAND_EXITS: Readonly<Record<string, ExitList>> = {
  keygen: [[0, 'both files written'], [2, 'bad arguments, PREFIX.key or PREFIX.pub exists, PREFIX is a directory, or the files could not be written']],
  'vault init': [[0, 'created and sealed'], [1, "a directory on the way to it is not root's own or others can write it"], [2, 'bad arguments, a missing key file or a secret key given to --trust, a directory that is not empty, no +i on its filesystem, not permitted (not root)']],
  'vault verify': [[0, 'intact'], [1, "a violation: signatures, trust policy, a hash, size, type or mode, a missing or extra entry, a seal, the vault's directories are not as the vault requires (insecure-path), or an operation was left interrupted (run vault recover)"], [2, 'could not check: not a vault, unreadable, a bad --trust file (also: no release deployed yet, nothing to verify)']],
  'vault status': [[0, 'shown'], [1, "the live release's signatures do not check out, a path is not sealed, an operation was left interrupted (run vault recover), or the vault's directories or lock are not as the vault requires (insecure-path, tampered)"], [2, 'not a vault (missing, a file, no vault.json) or it could not be read']],
  'vault heal': [[0, 'healed'], [1, 'refused: the stored bundle or the trust policy does not check out (nothing changed)'], [2, 'nothing to heal or could not heal']],
  sign: [[0, 'bundle written'], [1, 'the tree holds what a bundle may not (a device, fifo, socket, setuid or setgid file, an escaping or absolute symlink)'], [2, 'bad arguments, a public key given to --key, an unreadable file, --out exists']],
  deploy: [[0, 'deployed: the new release is live and sealed'], [1, DEPLOY_REJECTED], [2, DEPLOY_ENV]],
  'sign-and-deploy': [[0, 'signed and deployed: the new release is live and sealed'], [1, `${DEPLOY_REJECTED}; or the tree holds what a bundle may not`], [2, DEPLOY_ENV]],
  doctor: [[0, 'everything the vault needs works on this host'], [2, 'something the vault needs is missing (each with its fix), or --vault-dir is no directory']],
  daemon: [[0, 'stopped (SIGTERM)'], [1, "the vault is refused at start (it does not verify and was not healed, or its directories, one above it or the inbox's done/ and rejected/ are not root's own or others can write them), which the unit does not restart"], [2, 'another start-up failure (a port in use, an environment error), or a crash once it runs (an error escaping every handler, whatever its code), which the unit restarts'], [3, 'the configuration is refused (a bad field, a missing or bad trusted key, a socket in a directory others can write, a configuration or trusted key file others can write, no vault at vault.path yet, named with the sentinel vault init command that creates it, or vault.path names a file or a directory of other things), which the unit does not restart']],
  status: [[0, 'shown'], [2, ASK_DAEMON]],
  reload: [[0, 'the new configuration is in force'], [2, 'the daemon could not be asked'], [3, 'it was refused (the daemon keeps the old one)']],
  'target reset': [[0, 'reset (and running again, unless --no-wait)'], [2, `${ASK_DAEMON}, or the target failed again or was not running within --timeout`], [4, 'no such target']],
  trace: [[0, 'shown'], [2, ASK_DAEMON], [4, 'no such target'], [5, 'the daemon has no eBPF engine (it polls /proc; the message says why)']],
  'audit verify': [[0, 'the chain holds'], [1, 'the chain is broken: the file and line of the first break'], [2, 'a missing or unreadable file']],
  'vault rollback': [[0, 'rolled back: the previous kept release is live and sealed'], [1, `the release to go back to does not verify (nothing changed), or ${VAULT_UNSAFE}`], [2, `no older release is kept, ${VAULT_ENV}`]],
  'vault recover': [[0, 'recovered, or nothing to recover'], [1, VAULT_UNSAFE], [2, VAULT_ENV]],
  'vault manifest': [[0, 'printed'], [1, `the live release's signatures do not check out, or ${VAULT_UNSAFE}`], [2, `no release deployed yet, ${VAULT_ENV}`]],
  'install-units': [[0, 'installed (or with --uninstall stopped, disabled and removed)'], [2, 'bad arguments, a missing --node or --cli path, a unit directory that cannot be written (not permitted, read-only); a failed systemctl daemon-reload is a warning, not a failure']],
  demo: [[0, 'every step behaved as expected'], [1, 'a step was refused or found the vault not as it must be (the step and its code on the one error line: e.g. its temporary directory below one others can write)'], [2, 'a step could not run (no +i, not root, no temporary directory, a missing tool)']],
  completion: [[0, 'script printed'], [2, 'a shell other than bash']],
};

/** The `Exit: …` line of a command's --help, from COMMAND_EXITS. */
export function exitHelp(command: string): string {
  const list = COMMAND_EXITS[command];
  if (list === undefined) throw new Error(`no exit list for ${command}`);
  return `\nExit: ${list.map(([code, meaning]) => `${String(code)} ${meaning}`).join(', ')}.`;
}
