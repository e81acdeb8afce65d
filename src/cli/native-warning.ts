// Why: without the main native addon `vault verify` and `deploy` still work, but more slowly (chattr/lsattr,
// a walk and streaming in JavaScript) and by path where the addon goes through directory descriptors
// (docs/SECURITY.md: verify's lstat walk, the deletion of a pruned release); only `sentinel doctor` said so. One line on stderr, once per process;
// stdout, --json output and exit codes are untouched. Not said when SENTINEL_NO_NATIVE=1 asked for it.
import { loadNative, nativeLoadProblem } from '../adapters/native.js';

let warned = false;

const WEAKER = { 'vault verify': 'it reads the tree by path, not through directory descriptors', deploy: 'a pruned release is unsealed and deleted by path' } as const;

export function warnWithoutNative(command: keyof typeof WEAKER): void {
  if (warned || process.env.SENTINEL_NO_NATIVE === '1' || loadNative() !== null) return;
  warned = true;
  const why = nativeLoadProblem() ?? 'not built: npm run install';
  process.stderr.write(`sentinel: warning: the native addon is not loaded (${why}); ${command} runs without it: slower, and ${WEAKER[command]} (sentinel doctor)\n`);
}
