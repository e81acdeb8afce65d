// `sentinel vault status VAULT [--json]` exactly, as a monitoring check runs it: the runner the
// command tree would call, with its failure path, without commander and the tree. Any other form
// (options first, `--`, more arguments) goes through the tree. `npm run build` bundles this module
// alone as CommonJS, `dist/src/cli/status.cjs`, with its own code cache: a status reads, checks and
// compiles none of the verify and deploy runners' code (src/cli/bundle-loader.ts,
// docs/ARCHITECTURE.md#start-up).
import { reportFailure, setJsonMode } from './failure.js';
import { setDirectStdout } from './output.js';
import { setBlockingReads } from '../adapters/small-file.js';

// The bundle's own copy of the failure path: an error that escapes the runner is reported by the
// same module instance that knows the JSON mode and the error classes the runner throws.
export { reportFailure } from './failure.js';

/** `words`: what follows `vault status`. The vault and the JSON mode of the plain form, or null for the command tree. */
export function plainStatusArgs(words: readonly string[]): { path: string; json: boolean } | null {
  const [path, flag, ...rest] = words;
  if (path === undefined || path.startsWith('-') || (flag !== undefined && flag !== '--json') || rest.length > 0) return null;
  return { path, json: flag === '--json' };
}

/** `words`: the arguments after `sentinel`. The plain status's run, or null: the command tree runs it. */
export function runPlain(words: readonly string[]): Promise<number> | null {
  const status = words[0] === 'vault' && words[1] === 'status' ? plainStatusArgs(words.slice(2)) : null;
  return status === null ? null : runPlainVaultStatus(status.path, status.json);
}

export async function runPlainVaultStatus(path: string, json: boolean): Promise<number> {
  try {
    setJsonMode(json);
    // Its one result (or failure object) goes through fd 1 itself: no process.stdout (src/cli/output.ts).
    setDirectStdout(true);
    // It reads the vault's few small files blocking, without round trips to the thread pool (src/adapters/small-file.ts).
    setBlockingReads(true);
    const { runVaultStatus } = await import('./status-command.js');
    await runVaultStatus(path, json ? { json } : {});
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}
