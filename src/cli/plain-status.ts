// `sentinel vault status VAULT [--json]` exactly, as a monitoring check runs it: the runner the
// command tree would call, with its failure path, without commander and the tree. `npm run build`
// also bundles this module alone as CommonJS, `dist/src/cli/status.cjs`, which `main.ts` loads with
// require(): no ES module graph to link and no ES facade of Node's own modules on that path
// (docs/ARCHITECTURE.md#start-up).
import { reportFailure, setJsonMode } from './failure.js';
import { runVaultStatus } from './vault-commands.js';

// The bundle's own copy of the failure path: an error that escapes the runner is reported by the
// same module instance that knows the JSON mode and the error classes the runner throws.
export { reportFailure };

export async function runPlainVaultStatus(path: string, json: boolean): Promise<number> {
  try {
    setJsonMode(json);
    await runVaultStatus(path, json ? { json } : {});
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}
