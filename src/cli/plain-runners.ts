// The plain forms a shell, cron or a monitoring check runs, `vault verify VAULT [--trust KEY...]
// [--live-only] [--json]` and `deploy BUNDLE --vault VAULT [--json]` (src/cli/plain-deploy.ts lists
// its forms): their runners without commander and the command tree. `npm run build` bundles this
// module alone as CommonJS, `dist/src/cli/plain.cjs`, with a V8 code cache, which `main.ts` and the
// executable load through src/cli/bundle-loader.ts: no ES module graph to link and no function
// compiled by the process itself (docs/ARCHITECTURE.md#start-up). The vault code is imported when a
// runner runs, so in the bundle it is evaluated after verify's native pass has started. `vault
// status VAULT [--json]` has its own bundle (src/cli/plain-status.ts).
import { startEarlyVerify } from './early-verify.js';
import { plainDeployArgs, runPlainDeploy } from './plain-deploy.js';
import { plainVerifyArgs, runPlainVaultVerify } from './plain-verify.js';

// The bundle's own copy of the failure path: an error that escapes a runner is reported by the same
// module instance that knows the JSON mode and the error classes the runner throws.
export { reportFailure } from './failure.js';

/** `words`: the arguments after `sentinel`. The plain form's run, or null: the command tree runs it. */
export function runPlain(words: readonly string[]): Promise<number> | null {
  if (words[0] === 'deploy') {
    const deploy = plainDeployArgs(words.slice(1));
    return deploy === null ? null : runPlainDeploy(deploy);
  }
  if (words[0] !== 'vault' || words[1] !== 'verify') return null;
  const rest = words.slice(2);
  const verify = plainVerifyArgs(rest);
  if (verify === null) return null;
  // The live tree's hashing starts before the vault code is even evaluated.
  startEarlyVerify(rest);
  return runPlainVaultVerify(verify);
}
