import { z } from 'zod';

/**
 * Environment variables shared by every process, with the design documents' names and defaults.
 * Apps extend this with their own fields; the engine's loader validates, lists every problem and freezes.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true/false, got "${v}"` });
  return z.NEVER;
});

const postgresUrl = z
  .string()
  .trim()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), { message: 'must be a postgres:// or postgresql:// URL' })
  .refine(
    (v) => {
      try {
        new URL(v);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'is not a valid URL (URL-encode special characters in the password)' },
  );

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Node names: node-a/node-b (full nodes), worker-… (extra workers) or any short lowercase name. */
export const NODE_NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

export const baseConfigShape = {
  DATABASE_URL: postgresUrl.optional(),
  ADMIN_URL: postgresUrl.optional(),
  CLUSTER_NAME: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_" and "-" only (max 63)')
    .default('owui-sync'),
  ROLE: z.string().trim().regex(NODE_NAME_PATTERN, 'use e.g. node-a, node-b or worker-1').optional(),
  HOST_NAME: z.string().trim().min(1).max(253).optional(),
  HEARTBEAT_INTERVAL: int(1, 3600).default(30),
  LEASE_DURATION: int(2, 7200).default(60),
  CACHE_TTL: int(0, 86_400).default(300),
  BATCH_SIZE: int(1, 100_000).default(1000),
  LOG_LEVEL: z.string().trim().toLowerCase().pipe(z.enum(LOG_LEVELS)).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  ENABLE_METRICS: bool.default(true),
  SERVICE_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .optional(),
} as const;

export const baseConfigSchema = z.object(baseConfigShape).superRefine((cfg, ctx) => {
  if (cfg.LEASE_DURATION <= cfg.HEARTBEAT_INTERVAL) {
    ctx.addIssue({
      code: 'custom',
      path: ['LEASE_DURATION'],
      message: `must be greater than HEARTBEAT_INTERVAL (${cfg.HEARTBEAT_INTERVAL}) so a live leader renews in time`,
    });
  }
  if (cfg.DATABASE_URL && cfg.ADMIN_URL && sameLogin(cfg.DATABASE_URL, cfg.ADMIN_URL)) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_URL'],
      message: 'is the admin URL; the service must run as the restricted role (see SYNC_URL in .credentials)',
    });
  }
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

/** True when two connection strings log in as the same user on the same server and database. */
export function sameLogin(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    return (
      decodeURIComponent(x.username) === decodeURIComponent(y.username) &&
      x.hostname === y.hostname &&
      (x.port || '5432') === (y.port || '5432') &&
      x.pathname === y.pathname
    );
  } catch {
    return false;
  }
}

export { bool as booleanFromEnv, int as intFromEnv, postgresUrl as postgresUrlSchema };
