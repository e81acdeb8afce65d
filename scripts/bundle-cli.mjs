// Build step after tsc (`npm run build`): the `sentinel` executable, dist/src/cli/main.js, becomes
// one ES module bundle of the CLI with a chunk per lazily imported command module, so a command
// reads a handful of files instead of resolving and reading ~60 modules one by one
// (docs/ARCHITECTURE.md#start-up). tsc's per-module output stays beside it for the tests, the
// hash worker and anything that imports a module directly.
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// esbuild is a devDependency: a checkout whose node_modules predates it gets one clear line.
const { build } = await import('esbuild').catch(() => {
  console.error('sentinel build: esbuild is not installed; run `npm ci` (the CLI bundle needs it)');
  process.exit(1);
});

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'src', 'cli');
const CHUNK = /^sentinel-[A-Z0-9]+\.js(\.map)?$/;

// Chunks of an earlier build would stay behind under other hashes; the plain runners' bundles
// (PLAIN_BUNDLES below) are written again here and their code caches after this script by
// src/cli/build-assets.ts (one for another source is never used anyway).
const PLAIN_BUNDLES = ['plain.cjs', 'status.cjs'];
const STALE = new Set(PLAIN_BUNDLES.flatMap((name) => [name, `${name}.cache`, `${name}.map`]));
for (const name of readdirSync(outdir)) if (CHUNK.test(name) || STALE.has(name)) rmSync(join(outdir, name));

// commander requires node:child_process when it is loaded, for executable subcommands the sentinel
// never declares; that module pulls in net, dgram and the stream stack on every start (--help,
// `vault status`). commander gets a stand-in that requires it on the first call instead.
const lazyChildProcess = {
  name: 'lazy-child-process-for-commander',
  /** @param {import('esbuild').PluginBuild} b */
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (/[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-child-process' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "let cp; const load = () => (cp ??= require('node:child_process')); module.exports = new Proxy({}, { get: (_, key) => load()[key] });",
      loader: 'js',
    }));
  },
};

// tweetnacl (62 KB, and tables built when it is loaded) serves signing and the fallbacks; the vault
// verifies through node:crypto, so `vault status` and `vault verify` never call it. Core's imports
// of it get a stand-in that requires it on the first use instead.
const lazyTweetnacl = {
  name: 'lazy-tweetnacl',
  /** @param {import('esbuild').PluginBuild} b */
  setup(b) {
    // The stand-in's own require stays a require at run time: Node loads tweetnacl from node_modules then.
    b.onResolve({ filter: /^tweetnacl$/ }, (args) => (args.namespace === 'lazy-tweetnacl' ? { path: 'tweetnacl', external: true } : { path: 'tweetnacl', namespace: 'lazy-tweetnacl' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-tweetnacl' }, () => ({
      contents: "let nacl; const load = () => (nacl ??= require('tweetnacl')); module.exports = new Proxy({}, { get: (_, key) => load()[key] });",
      loader: 'js',
    }));
  },
};

await build({
  plugins: [lazyChildProcess, lazyTweetnacl],
  entryPoints: { main: join(root, 'src', 'cli', 'main.ts') },
  outdir,
  // Chunks sit next to main.js, so a module's import.meta.url keeps the depth it has in dist/src/cli.
  chunkNames: 'sentinel-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Large packages only some commands use stay in node_modules and are imported when first needed.
  external: ['execa', 'pino', 'chokidar', 'zod', 'prom-client'],
  // Bundled CommonJS (commander, tweetnacl) calls require() for Node's own modules.
  banner: { js: "import { createRequire as __sentinelCreateRequire } from 'node:module'; const require = __sentinelCreateRequire(import.meta.url);" },
  sourcemap: true,
  allowOverwrite: true,
  logLevel: 'warning',
});

// The plain forms of `vault verify` and `vault status` (what a shell, cron or a monitoring check
// runs) get their runners as one CommonJS file, plain.cjs: main.js loads it
// (src/cli/bundle-loader.ts), so those paths link no ES module graph (about 20 chunks, each
// resolved, read, compiled and linked by the ES loader) and build no ES facade of Node's own modules
// (a facade reads every export, which loads fs/promises, readline and the stream stack). Measured:
// BENCHMARKS.md "CLI: whole processes". The vault code is imported by the runners when they run;
// in this one file esbuild turns those imports into functions that evaluate the modules on first
// call, so verify's native pass starts before the vault code is evaluated. The large packages stay
// external; only a vault without the native addon reaches one (execa, for chattr), which require()
// loads (bundle-loader.ts uses this file only where Node can require an ES module).
// In plain.cjs an import() of one of Node's own modules (node:child_process, which only a vault
// without the native addon reaches) becomes a require() on that first use: the file is compiled
// through vm.Script with a code cache (src/cli/bundle-loader.ts), and a function taken from a code
// cache has no import() callback ("A dynamic import callback was not specified").
const builtinsRequiredOnFirstUse = {
  name: 'builtins-required-on-first-use',
  /** @param {import('esbuild').PluginBuild} b */
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, namespace: 'builtin-on-first-use' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'builtin-on-first-use' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

// node:crypto (about 3 ms of a start: OpenSSL's bindings, the stream stack, the key and cipher
// classes) is required in plain.cjs on the first call of one of its functions, not when a module that
// imports it is evaluated: `vault status` and `vault verify` then load it only without the native
// addon, whose OpenSSL calls check their signatures and hashes (src/vault/ed25519.ts). The stand-in
// is an ES module of one forwarding function per function this Node's node:crypto exports (classes
// and values are left out: importing one by name fails the build), so esbuild links the importers
// to those functions directly; as a CommonJS object of getters it was copied into a new object of
// getters (esbuild's __toESM, about 70 properties) at every module that imports node:crypto, about
// 0.3-0.6 ms of a fresh process each time.
// node:fs/promises the same way: its first use loads readline and the fs watchers (about 1 ms of a
// fresh process), and `vault status` reads blocking (src/adapters/small-file.ts), so it never loads it.
// (Its one value, `constants`, is node:fs's own object, which every bundle loads anyway: `also` re-exports it from there.)
/**
 * A plugin that hands the plain bundles `builtin` as an ES module of forwarding functions, the module required on the first call.
 * @param {string} builtin
 * @param {string} [also]
 */
async function onFirstCall(builtin, also = '') {
  /** @type {Record<string, unknown>} */
  const real = {};
  Object.assign(real, await import(builtin));
  const functions = Object.keys(real).filter((n) => n !== 'default' && /^[a-z]/.test(n) && typeof real[n] === 'function');
  const namespace = `${builtin.replace(/[^a-z]/g, '-')}-on-first-call`;
  const bare = builtin.replace(/^node:/, '');
  return {
    name: namespace,
    /** @param {import('esbuild').PluginBuild} b */
    setup(b) {
      const filter = new RegExp(`^(node:)?${bare.replace('/', '\\/')}$`);
      // The stand-in's own require stays a require of Node's module.
      b.onResolve({ filter }, (args) => (args.namespace === namespace ? { path: builtin, external: true } : { path: builtin, namespace }));
      b.onLoad({ filter: /.*/, namespace }, () => ({
        contents: `${also}let m; const load = () => (m ??= require(${JSON.stringify(builtin)}));\n${functions.map((name) => `export function ${name}(...args) { return load().${name}(...args); }`).join('\n')}\n`,
        loader: 'js',
      }));
    },
  };
}
const nodeCryptoOnFirstUse = await onFirstCall('node:crypto');
const nodeFsPromisesOnFirstUse = await onFirstCall('node:fs/promises', "export { constants } from 'node:fs';\n");
if ((await import('node:fs/promises')).constants !== (await import('node:fs')).constants) throw new Error('node:fs/promises.constants is not node:fs.constants on this Node: the stand-in cannot re-export it');

// Two bundles of the same make: `vault status`'s runner alone (status.cjs: no verify or deploy code
// to read, check and deserialise in a status), and the verify and deploy runners (plain.cjs).
for (const [name, entry] of [['plain.cjs', 'plain-runners.ts'], ['status.cjs', 'plain-status.ts']]) {
  await build({
    plugins: [lazyTweetnacl, builtinsRequiredOnFirstUse, nodeCryptoOnFirstUse, nodeFsPromisesOnFirstUse],
    entryPoints: [join(root, 'src', 'cli', entry)],
    outfile: join(outdir, name),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: ['execa', 'pino', 'chokidar', 'zod', 'prom-client'],
    // The file sits next to main.js, so a module's import.meta.url keeps the depth it has in dist/src/cli.
    define: { 'import.meta.url': '__sentinelModuleUrl' },
    banner: { js: "const __sentinelModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
    sourcemap: true,
    logLevel: 'warning',
  });
}

// The `sentinel` executable (the package's bin), sentinel.cjs: src/cli/entry.ts alone as CommonJS,
// so `--help` and the plain forms start without Node's ES module loader (an ES module entry costs
// about 5 ms of CPU before its first line runs; BENCHMARKS.md "CLI: whole processes"). It holds the
// launcher-env step and the trusted-cache loader; everything else is main.js, imported as it is.
const mainStaysOutside = {
  name: 'main-stays-outside',
  /** @param {import('esbuild').PluginBuild} b */
  setup(b) {
    b.onResolve({ filter: /^\.\/main\.js$/ }, () => ({ path: './main.js', external: true }));
  },
};

await build({
  plugins: [mainStaysOutside],
  entryPoints: [join(root, 'src', 'cli', 'entry.ts')],
  outfile: join(outdir, 'sentinel.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  define: { 'import.meta.url': '__sentinelModuleUrl' },
  banner: { js: "const __sentinelModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// Any other import() left in a plain runners' bundle (of a package, say) would fail at run time in
// the cached compile: the build stops here instead.
for (const name of PLAIN_BUNDLES) {
  if (/(^|[^\w$.])import\(/m.test(readFileSync(join(outdir, name), 'utf8'))) {
    console.error(`sentinel build: dist/src/cli/${name} holds an import(); the plain runners' bundles must reach other modules through require() (scripts/bundle-cli.mjs)`);
    process.exit(1);
  }
}

// V8 scans a source holding any character above U+00FF as two-byte text, a slower scan on every
// start. esbuild already writes strings, regular expressions and names in ASCII (its default
// charset); what it keeps as written are comments, so a dash or an arrow in one is written as
// \uXXXX there, each UTF-16 unit (the form that would mean the same characters in a string or a
// regular expression too; a later line's source map is unaffected). U+2028 and U+2029, which end a
// line, cannot be in a comment and are left alone.
for (const name of readdirSync(outdir)) {
  if (name !== 'main.js' && !PLAIN_BUNDLES.includes(name) && name !== 'sentinel.cjs' && !(CHUNK.test(name) && name.endsWith('.js'))) continue;
  const file = join(outdir, name);
  const text = readFileSync(file, 'utf8');
  if (!/[^\0-\x7f\u2028\u2029]/.test(text)) continue;
  writeFileSync(file, text.replace(/[^\0-\x7f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
