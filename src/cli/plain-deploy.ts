// `sentinel deploy BUNDLE` followed by its options, as a shell, CI or a release script runs it: the
// runner the command tree would call (src/cli/deploy-command.ts), with its failure path, without
// loading commander and building the tree (BENCHMARKS.md "CLI: whole processes"). Bundled into
// `dist/src/cli/plain.cjs` (src/cli/plain-runners.ts, docs/ARCHITECTURE.md#start-up). Only these
// exact forms: the bundle first, then `--vault V`, `--socket S`, `--trust KEY...`, `--threshold K`
// and `--json`, each at most once, every value a word that is not empty and does not start with
// `-`, `--trust` with one or more key files, `--threshold` a value the tree's parser takes. Anything
// else (options first, `--`, `--opt=value`, a repeated option, another word, `-h`) goes through the
// tree, which parses and reports it. What the words mean (one of --vault or --socket, --trust only
// with --vault, --threshold only with --trust) is checked by runDeploy itself, on both paths.
import { positiveInteger } from './args.js';
import { reportFailure, setJsonMode } from './failure.js';

/** What the command tree would hand the deploy runner for these words. */
export interface PlainDeploy {
  bundle: string;
  opts: { vault?: string; socket?: string; trust?: string[]; threshold?: number; json?: true };
}

const isValue = (w: string | undefined): w is string => w !== undefined && w !== '' && !w.startsWith('-');

/** The threshold as the tree's option parser reads it, or null where that parser would refuse it (the tree then says so). */
function threshold(value: string): number | null {
  try {
    return positiveInteger('--threshold')(value);
  } catch {
    return null;
  }
}

/** `words`: what follows `deploy`. The plain form's bundle and options, or null for the command tree. */
export function plainDeployArgs(words: readonly string[]): PlainDeploy | null {
  const bundle = words[0];
  if (!isValue(bundle)) return null;
  const opts: PlainDeploy['opts'] = {};
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    const next = words[i + 1];
    if (w === '--json' && opts.json === undefined) opts.json = true;
    else if (w === '--vault' && opts.vault === undefined && isValue(next)) opts.vault = words[++i];
    else if (w === '--socket' && opts.socket === undefined && isValue(next)) opts.socket = words[++i];
    else if (w === '--threshold' && opts.threshold === undefined && isValue(next)) {
      // Parsed once: a value the tree's parser refuses leaves the words to the tree, which says so.
      const k = threshold(next);
      if (k === null) return null;
      opts.threshold = k;
      i++;
    } else if (w === '--trust' && opts.trust === undefined && isValue(next)) {
      // Variadic, as the tree declares it: every following word that is not an option is a key file.
      const keys: string[] = [];
      while (isValue(words[i + 1])) keys.push(words[++i]!);
      opts.trust = keys;
    } else return null;
  }
  return { bundle, opts };
}

// Why: the tree's deploy action and runCli's failure path, for the plain form only.
export async function runPlainDeploy(p: PlainDeploy): Promise<number> {
  try {
    setJsonMode(p.opts.json === true);
    const { runDeploy } = await import('./deploy-command.js');
    await runDeploy(p.bundle, p.opts);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportFailure(e);
  }
}
