// Config schema of memory/OOM protection; owned by the protection work.
import { z } from 'zod';

export const protectionSchema = z
  .object({
    slice: z.string().min(1).default('omnimind.slice'),
  })
  .strict();

export type ProtectionSpec = z.infer<typeof protectionSchema>;
