// `sentinel vault verify VAULT [--trust KEY...] [--live-only] [--json]`, the forms a shell, cron or a
// monitoring check runs: the runner the command tree would call, with its failure path, without
// loading commander and building the tree (about 43M instructions of the main thread, which
// competes with the hashing threads for the same cores: BENCHMARKS.md "CLI: whole processes").
// Only these exact forms: the vault first, then each of the three options at most once, `--trust`
// with one or more key files; anything else (options first, `--`, `--threshold`, a value that looks
// like an option, `-h`) goes through the tree, which parses and reports it.
import { reportFailure, setJsonMode } from './failure.js';
import { setDirectStdout } from './output.js';

/** What the command tree would hand the verify runner for these words. */
export interface PlainVerify {
  path: string;
  opts: { trust?: string[]; liveOnly?: true; json?: true };
}

const isValue = (w: string | undefined): w is string => w !== undefined && w !== '' && !w.startsWith('-');

/** `words`: what follows `vault verify`. The plain form's vault and options, or null for the command tree. */
export function plainVerifyArgs(words: readonly string[]): PlainVerify | null {
  const path = words[0];
  if (!isValue(path)) return null;
  const opts: PlainVerify['opts'] = {};
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    if (w === '--live-only' && opts.liveOnly === undefined) opts.liveOnly = true;
    else if (w === '--json' && opts.json === undefined) opts.json = true;
    else if (w === '--trust' && opts.trust === undefined && isValue(words[i + 1])) {
      // Variadic, as the tree declares it: every following word that is not an option is a key file.
      const keys: string[] = [];
      while (isValue(words[i + 1])) keys.push(words[++i]!);
      opts.trust = keys;
    } else return null;
  }
  return { path, opts };
}

// Why: the tree's verify action and runCli's failure path, for the plain form only.
export async function runPlainVaultVerify(p: PlainVerify): Promise<number> {
  try {
    setJsonMode(p.opts.json === true);
    // Its one result (or failure object) goes through fd 1 itself, as status's does: no
    // process.stdout, whose stream modules (about 3 ms of CPU) would take a core from the hashing.
    setDirectStdout(true);
    const { runVaultVerify } = await import('./vault-commands.js');
    return await runVaultVerify(p.path, p.opts);
  } catch (e) {
    return reportFailure(e);
  }
}
