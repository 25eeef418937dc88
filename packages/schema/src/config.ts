import { z } from 'zod';

/**
 * The one configuration pipeline's contracts: the table of defaults every process applies, the variables shared by
 * every process, and the cross-field checks run for every process. A process's schema is composed from shapes
 * (base → cluster → api) with `composeConfig`, which adds the shared checks; the engine's `loadConfig` resolves
 * `*_FILE` secrets and `.credentials`, validates (listing every problem) and freezes. docs/configuration.md has the
 * table of every variable, its default and the processes that read it.
 */

/**
 * Every default, in one place. BATCH_SIZE is 5000 because the sync benchmarks (docs/benchmarks.md) were measured
 * with chunks of 5000 rows (a chunk also closes at about 4 MB, so memory stays bounded); SYNC_CLAIM_TTL is 30 s,
 * what the cluster runs and its failover figures (docs/cluster.md) assume.
 */
export const CONFIG_DEFAULTS = {
  CLUSTER_NAME: 'owui-sync',
  HEARTBEAT_INTERVAL: 30,
  LEASE_DURATION: 60,
  CACHE_TTL: 300,
  BATCH_SIZE: 5000,
  SYNC_CLAIM_TTL: 30,
  LOG_LEVEL: 'info',
  LOG_FORMAT: 'json',
  ENABLE_METRICS: true,
  // cluster runtime (node, worker)
  API_PORT: 9443,
  API_HOST: '0.0.0.0',
  WORKER_CONCURRENCY: 2,
  SCHEDULER_INTERVAL: 5,
  QUEUE_POLL_INTERVAL: 0.5,
  QUEUE_SUPERVISE_INTERVAL: 10,
  DATABASE_POOLER: 'auto',
  DB_POOL_SIZE: 10,
  DB_CONNECTION_LIFETIME: 300,
  LARGE_TENANT_MB: 256,
  LARGE_TENANT_CONCURRENCY: 1,
  FAILING_TENANT_CONCURRENCY: 1,
  SHUTDOWN_TIMEOUT: 30,
  OFFLINE_AFTER: 300,
  ENABLE_API: true,
  MAINTENANCE_ENABLED: true,
  MAINTENANCE_INTERVAL: 300,
  MAINTENANCE_BATCH_SIZE: 1000,
  MAINTENANCE_PAUSE_MS: 100,
  HISTORY_RETENTION_DAYS: 30,
  SKIPPED_RUN_RETENTION_HOURS: 24,
  CONFLICT_RETENTION_DAYS: 30,
  FAILED_ROW_RETENTION_DAYS: 30,
  CACHE_EVENTS_RETENTION_HOURS: 24,
  PROGRESS_RETENTION_DAYS: 7,
  DRILL_INTERVAL_HOURS: 24,
  DRILL_CONCURRENCY: 1,
  DRILL_RETENTION_DAYS: 30,
  // API (served by every node)
  JWT_REQUIRE_EXP: true,
  API_PUBLIC_READS: false,
  API_PUBLIC_HEALTH: true,
  API_PUBLIC_METRICS: true,
  API_TRUST_LOOPBACK: 'auto',
  STATE_POLL_INTERVAL_MS: 500,
  METRICS_TENANT_LABELS: 'top-50',
  RPO_FACTOR: 2,
  DRILL_MAX_AGE_HOURS: 48,
} as const;

/** The processes that read configuration. */
export const PROCESS_KINDS = ['node', 'worker', 'scheduler', 'api', 'cli'] as const;
export type ProcessKind = (typeof PROCESS_KINDS)[number];

/** How messages name a kind of process ("a worker must run as …"). */
export const PROCESS_LABELS: Readonly<Record<ProcessKind, string>> = {
  node: 'a node',
  worker: 'a worker',
  scheduler: 'a scheduler',
  api: 'an API process',
  cli: 'syncs and reads',
};

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

/** Environment variables shared by every process. Apps compose theirs from this and their own shapes. */
export const baseConfigShape = {
  DATABASE_URL: postgresUrl.optional(),
  ADMIN_URL: postgresUrl.optional(),
  CLUSTER_NAME: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'letters, digits, ".", "_" and "-" only (max 63)')
    .default(CONFIG_DEFAULTS.CLUSTER_NAME),
  ROLE: z.string().trim().regex(NODE_NAME_PATTERN, 'use e.g. node-a, node-b or worker-1').optional(),
  HOST_NAME: z.string().trim().min(1).max(253).optional(),
  HEARTBEAT_INTERVAL: int(1, 3600).default(CONFIG_DEFAULTS.HEARTBEAT_INTERVAL),
  LEASE_DURATION: int(2, 7200).default(CONFIG_DEFAULTS.LEASE_DURATION),
  CACHE_TTL: int(0, 86_400).default(CONFIG_DEFAULTS.CACHE_TTL),
  /** Rows per transaction in a sync (a chunk also closes at about 4 MB of encoded data). */
  BATCH_SIZE: int(1, 100_000).default(CONFIG_DEFAULTS.BATCH_SIZE),
  /**
   * Seconds a running sync's claim on its tenant lasts without renewal (renewed every third of it). After a worker
   * dies, the tenant can be synced again once its claim has lapsed.
   */
  SYNC_CLAIM_TTL: int(3, 3600).default(CONFIG_DEFAULTS.SYNC_CLAIM_TTL),
  LOG_LEVEL: z.string().trim().toLowerCase().pipe(z.enum(LOG_LEVELS)).default(CONFIG_DEFAULTS.LOG_LEVEL),
  LOG_FORMAT: z.enum(['json', 'pretty']).default(CONFIG_DEFAULTS.LOG_FORMAT),
  ENABLE_METRICS: bool.default(CONFIG_DEFAULTS.ENABLE_METRICS),
  SERVICE_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .optional(),
} as const;

/**
 * The cross-field checks every process runs (composeConfig adds them to each process's schema):
 * LEASE_DURATION > HEARTBEAT_INTERVAL; DATABASE_URL never logs in as ADMIN_URL's role (services, and syncctl's
 * syncs, run as the restricted role); every long-running process (node, worker, scheduler, API) needs DATABASE_URL.
 */
export function checkSharedConfig(cfg: Record<string, unknown>, ctx: z.RefinementCtx, kind: ProcessKind): void {
  const lease = cfg.LEASE_DURATION;
  const heartbeat = cfg.HEARTBEAT_INTERVAL;
  if (typeof lease === 'number' && typeof heartbeat === 'number' && lease <= heartbeat) {
    ctx.addIssue({
      code: 'custom',
      path: ['LEASE_DURATION'],
      message: `must be greater than HEARTBEAT_INTERVAL (${heartbeat}) so a live leader renews in time`,
    });
  }
  const service = typeof cfg.DATABASE_URL === 'string' ? cfg.DATABASE_URL : undefined;
  const admin = typeof cfg.ADMIN_URL === 'string' ? cfg.ADMIN_URL : undefined;
  if (service && admin && sameRole(service, admin)) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_URL'],
      message:
        `is the admin login (it logs in as "${loginRole(admin)}", like ADMIN_URL); ` +
        `${PROCESS_LABELS[kind]} must run as the restricted service role: set ` +
        'DATABASE_URL to SYNC_URL from .credentials (syncctl init writes it)',
    });
  }
  if (kind !== 'cli' && !service) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_URL'],
      message: 'is required (the service-role URL; or SYNC_URL in .credentials, or DATABASE_URL_FILE)',
    });
  }
}

/**
 * A process's configuration schema: its shape (composed by spreading base → cluster → api shapes) plus the shared
 * cross-field checks for that kind of process.
 */
export function composeConfig<T extends z.ZodRawShape>(kind: ProcessKind, shape: T) {
  return z.object(shape).superRefine((cfg, ctx) => checkSharedConfig(cfg as Record<string, unknown>, ctx, kind));
}

/** The variables every process shares, with the shared checks (what syncctl's own commands read). */
export const baseConfigSchema = composeConfig('cli', baseConfigShape);
export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * The role a connection string logs in as: its user name without a Supabase pooler's `.project_ref` suffix
 * (`postgres.abcd` logs in as `postgres`), or null when it is not a URL.
 */
export function loginRole(url: string): string | null {
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user.split('.')[0] || null;
  } catch {
    return null;
  }
}

/**
 * True when two connection strings log in as the same role: the pooler URL and the direct URL of one role are the
 * same login although their hosts differ.
 */
export function sameRole(a: string, b: string): boolean {
  const x = loginRole(a);
  return x !== null && x === loginRole(b);
}

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
