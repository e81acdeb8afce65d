// Config schema of one protected target (DESIGN.md "Daemon configuration"); owned by the eBPF/recovery work.
import { z } from 'zod';

export const targetSchema = z
  .object({
    name: z.string().min(1),
    unit: z.string().min(1).optional(),
    command: z.array(z.string()).min(1).optional(),
    pidFile: z.string().min(1).optional(),
    restart: z.array(z.string()).min(1).optional(),
    port: z.number().int().min(1).max(65535).default(8000),
    health: z.object({ url: z.string().url() }).optional(),
  })
  .strict();

export type TargetSpec = z.infer<typeof targetSchema>;
