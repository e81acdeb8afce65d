// Config schema of memory/OOM protection (docs/PROTECTION.md).
import { z } from 'zod';

const UNIT_FACTORS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

// Memory sizes are written like systemd's MemoryLow=: bytes, or a number with K, M, G or T (base 1024).
export function parseMemorySize(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`memory size must be a whole number of bytes >= 0, got ${value}`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  if (m === null) throw new RangeError(`memory size "${value}" is not bytes or a number with K, M, G or T`);
  const factor = UNIT_FACTORS[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Math.floor(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`memory size "${value}" is too large`);
  return bytes;
}

const memorySize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  try {
    return parseMemorySize(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const regexSource = z.string().min(1).refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

// An expendable process: the OOM killer should take it before anything protected.
export const expendableSchema = z
  .object({
    comm: regexSource.optional(),
    cmdline: regexSource.optional(),
    oomScoreAdj: z.number().int().min(1).max(1000).default(500),
  })
  .strict()
  .refine((e) => e.comm !== undefined || e.cmdline !== undefined, { message: 'an expendable entry needs comm or cmdline' });

// What the protection manager applies: the slice, its memory floor, and OOM scores.
export const protectionSchema = z
  .object({
    /** systemd slice name (also the cgroup directory name when there is no systemd). */
    slice: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9_.:-]+\.slice$/, 'a slice name like "omnimind.slice"')
      .default('omnimind.slice'),
    /** memory.low of the slice: bytes, or "512M" (K/M/G/T, base 1024). Needs the v2 memory controller. */
    memoryLow: memorySize.optional(),
    /** memory.min of the slice, same units as memoryLow. */
    memoryMin: memorySize.optional(),
    /** oom_score_adj of every process of the protected services and their children. */
    oomScoreAdj: z.number().int().min(-1000).max(1000).default(-1000),
    /** Processes (matched by regex on comm or cmdline) that get a higher score. */
    expendable: z.array(expendableSchema).default([]),
    /** Full re-check (slice, memory settings, ancestors, expendables) at least this often. */
    checkIntervalMs: z.number().int().min(100).max(10_000).default(10_000),
    /** Cheap scan of the protected process trees (new children, scores, membership). */
    scanIntervalMs: z.number().int().min(50).max(10_000).default(1_000),
    /** Directory the slice cgroup is created in when there is no systemd (default: the cgroup v2 mount). */
    cgroupRoot: z.string().startsWith('/').optional(),
  })
  .strict();

// The validated config (sizes in bytes) and what a config file may contain.
export type ProtectionSpec = z.infer<typeof protectionSchema>;
export type ProtectionSpecInput = z.input<typeof protectionSchema>;
export type ExpendableSpec = z.infer<typeof expendableSchema>;
