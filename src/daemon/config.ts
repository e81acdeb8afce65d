// The daemon's configuration (docs/CONFIG.md): validated once at start, every bad field named.
import { z } from 'zod';
import { SentinelError } from '../core/errors.js';
import { DAEMON_LIMIT_BOUNDS, DEFAULT_DAEMON_LIMITS, type DaemonLimits } from '../core/config-limits.js';
import { targetSchema } from './targets/spec.js';
import { protectionSchema } from './protection/spec.js';
import { parseMetricsListen } from '../core/metrics-listen.js';
import { readOwnedConfigFile } from './config-file-safety.js';

const absolutePath = z.string().min(1).refine((p) => p.startsWith('/'), { message: 'must be an absolute path' });

const limitsShape = Object.fromEntries(
  (Object.keys(DEFAULT_DAEMON_LIMITS) as (keyof DaemonLimits)[]).map((k) => [
    k,
    z.number().int().min(DAEMON_LIMIT_BOUNDS[k].min).max(DAEMON_LIMIT_BOUNDS[k].max).default(DEFAULT_DAEMON_LIMITS[k]),
  ]),
) as { [K in keyof DaemonLimits]: z.ZodDefault<z.ZodNumber> };

// Why: the one schema of the config file; key names are a user-facing contract, defaults are documented in docs/CONFIG.md.
export const daemonConfigSchema = z
  .object({
    vault: z
      .object({
        path: absolutePath,
        trust: z.array(absolutePath).min(1),
        threshold: z.number().int().min(1).default(1),
        inbox: absolutePath.optional(),
        onTamper: z.enum(['heal', 'alert']).default('heal'),
        flagTracer: z.enum(['auto', 'off']).default('off'),
      })
      .strict(),
    control: z
      .object({
        socket: absolutePath.default('/run/omnimind-sentinel/sentinel.sock'),
        group: z.string().min(1).optional(),
      })
      .strict()
      .default({ socket: '/run/omnimind-sentinel/sentinel.sock' }),
    audit: z
      .object({
        path: absolutePath.default('/var/log/omnimind-sentinel/audit.log'),
        appendOnly: z.boolean().default(true),
      })
      .strict()
      .default({ path: '/var/log/omnimind-sentinel/audit.log', appendOnly: true }),
    stateDir: absolutePath.default('/var/lib/omnimind-sentinel'),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    limits: z.object(limitsShape).strict().default(DEFAULT_DAEMON_LIMITS),
    // Names key the status, the audit log and `target reset`: two targets may not share one.
    targets: z
      .array(targetSchema)
      .default([])
      .superRefine((targets, ctx) => {
        const seen = new Set<string>();
        targets.forEach((t, i) => {
          if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate target name ${JSON.stringify(t.name)}` });
          seen.add(t.name);
        });
      }),
    protection: protectionSchema.prefault({}),
    // Prometheus exposition (docs/DAEMON.md#metrics): off unless `listen` names where.
    metrics: z
      .object({
        listen: z
          .string()
          .superRefine((v, ctx) => {
            const r = parseMetricsListen(v);
            if ('error' in r) ctx.addIssue({ code: 'custom', message: r.error });
          })
          .optional(),
        group: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type DaemonConfig = z.infer<typeof daemonConfigSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const at = issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${String(p)}]` : `.${String(p)}`)).join('').replace(/^\./, '');
      return `${at}: ${issue.message}`;
    })
    .join('; ');
}

// Why: untrusted input (a file, flags) becomes a DaemonConfig only here; the error names every bad field (`sentinel daemon` exits EXIT_CONFIG, 3).
export function parseDaemonConfig(value: unknown, where: string): DaemonConfig {
  const result = daemonConfigSchema.safeParse(value);
  if (!result.success) throw new SentinelError('config', `invalid configuration: ${describeIssues(result.error)}`, { where });
  return result.data;
}

// Why: `sentinel daemon --config FILE`.
export function loadDaemonConfig(file: string): Promise<DaemonConfig> {
  return resolveDaemonConfig(file, {});
}

// Why: `sentinel daemon --vault DIR --trust PUB... --socket PATH` runs with no file at all; flags override the file.
export function mergeDaemonFlags(base: unknown, flags: { vault?: string; trust?: string[]; socket?: string; inbox?: string; audit?: string; stateDir?: string; logLevel?: string }): unknown {
  const obj = (typeof base === 'object' && base !== null ? { ...(base as Record<string, unknown>) } : {}) as Record<string, unknown>;
  const section = (name: string): Record<string, unknown> => {
    const v = obj[name];
    const copy = typeof v === 'object' && v !== null ? { ...(v as Record<string, unknown>) } : {};
    obj[name] = copy;
    return copy;
  };
  if (flags.vault !== undefined) section('vault').path = flags.vault;
  if (flags.trust !== undefined && flags.trust.length > 0) section('vault').trust = flags.trust;
  if (flags.inbox !== undefined) section('vault').inbox = flags.inbox;
  if (flags.socket !== undefined) section('control').socket = flags.socket;
  if (flags.audit !== undefined) section('audit').path = flags.audit;
  if (flags.stateDir !== undefined) obj.stateDir = flags.stateDir;
  if (flags.logLevel !== undefined) section('log').level = flags.logLevel;
  return obj;
}

/** The largest configuration file read: a vault, its keys and a few dozen targets fit in a small fraction. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

// Why: reads the file if given, applies flags, validates once.
export async function resolveDaemonConfig(file: string | undefined, flags: Parameters<typeof mergeDaemonFlags>[1]): Promise<DaemonConfig> {
  let base: unknown = {};
  const where = file ?? 'command-line flags';
  if (file === undefined && flags.vault === undefined && (flags.trust ?? []).length === 0) {
    throw new SentinelError('config', 'no configuration: give --config FILE, or --vault DIR and --trust PUB... (see sentinel daemon --help)', { where });
  }
  if (file !== undefined) {
    const text = await readOwnedConfigFile(file, { what: 'configuration file', maxBytes: MAX_CONFIG_BYTES, badFileCode: 'config' });
    try {
      base = JSON.parse(text);
    } catch (cause) {
      throw new SentinelError('config', `configuration is not valid JSON: ${(cause as Error).message}`, { where: file, cause });
    }
  }
  return parseDaemonConfig(mergeDaemonFlags(base, flags), where);
}

/** The exit code of `sentinel daemon` and `sentinel reload` when the configuration is refused (the unit's RestartPreventExitStatus=1 3 does not restart it). */
export const EXIT_CONFIG = 3;

const configRejections = new WeakSet<object>();

// Why: a failure while reading the configuration or its key files is the operator's to fix, not worth a
// restart loop; it is marked so `sentinel daemon` exits EXIT_CONFIG, which the unit does not restart.
export function markConfigRejected<E>(e: E): E {
  if (typeof e === 'object' && e !== null) configRejections.add(e);
  return e;
}

// Why: start-up reads the configuration and its keys through this, so their failures exit EXIT_CONFIG.
export async function asConfigRejection<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    throw markConfigRejected(e);
  }
}

// Why: the start-up and reload paths ask this to choose EXIT_CONFIG over the error's own exit code.
export function isConfigRejection(e: unknown): boolean {
  return (typeof e === 'object' && e !== null && configRejections.has(e)) || (e instanceof SentinelError && e.code === 'config');
}
