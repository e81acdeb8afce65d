// `sentinel vault status VAULT [--json]` exactly, as a monitoring check runs it: the runner the
// command tree would call, with its failure path, without commander and the tree. Any other form
// (options first, `--`, more arguments) goes through the tree. Bundled into `dist/src/cli/plain.cjs`
// (src/cli/plain-runners.ts, docs/ARCHITECTURE.md#start-up).
import { reportFailure, setJsonMode } from './failure.js';
import { setDirectStdout } from './output.js';

/** `words`: what follows `vault status`. The vault and the JSON mode of the plain form, or null for the command tree. */
export function plainStatusArgs(words: readonly string[]): { path: string; json: boolean } | null {
  const [path, flag, ...rest] = words;
  if (path === undefined || path.startsWith('-') || (flag !== undefined && flag !== '--json') || rest.length > 0) return null;
  return { path, json: flag === '--json' };
}

export async function runPlainVaultStatus(path: string, json: boolean): Promise<number> {
  try {
    setJsonMode(json);
    // Its one result (or failure object) goes through fd 1 itself: no process.stdout (src/cli/output.ts).
    setDirectStdout(true);
    const { runVaultStatus } = await import('./vault-commands.js');
    await runVaultStatus(path, json ? { json } : {});
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}
