// The `sentinel` executable starts Node through env(1) with NODE_EXTRA_CA_CERTS removed (main.ts's
// first line, docs/ARCHITECTURE.md#start-up): Node 20 reads and parses the CA file that variable
// names before any JavaScript runs (45-80 ms per process on a machine that sets it to the system
// bundle), and the sentinel makes no TLS connection. env(1) keeps the value in SAVED_CA_VAR; the
// process puts it back before anything else, so its own environment, and every process it starts
// (daemon targets, systemctl, chattr, the demo), is the user's again.

/** Where the shebang line keeps NODE_EXTRA_CA_CERTS's value while Node starts (also in main.ts's first line). */
export const SAVED_CA_VAR = 'SENTINEL_NODE_EXTRA_CA_CERTS';

// Why: undo the launcher's one change. env(1) expands an unset variable to '' as it does an empty
// one, so an empty saved value comes back as unset (Node ignores an empty NODE_EXTRA_CA_CERTS too).
export function restoreLauncherEnv(env: NodeJS.ProcessEnv = process.env): void {
  const saved = env[SAVED_CA_VAR];
  if (saved === undefined) return; // not started through the launcher line (`node main.js`, a unit)
  delete env[SAVED_CA_VAR];
  if (saved !== '' && env.NODE_EXTRA_CA_CERTS === undefined) env.NODE_EXTRA_CA_CERTS = saved;
}
