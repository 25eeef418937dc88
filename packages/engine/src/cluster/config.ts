import os from 'node:os';
import { z } from 'zod';
import {
  CONFIG_DEFAULTS,
  baseConfigShape,
  booleanFromEnv,
  composeConfig,
  intFromEnv,
  type ProcessKind as ConfiguredKind,
} from '@owui-sync/schema';

/**
 * Environment of the node and worker processes: the shared variables (DATABASE_URL, CLUSTER_NAME, ROLE,
 * HOST_NAME, HEARTBEAT_INTERVAL, LEASE_DURATION, …) plus the cluster runtime's own.
 */
export const POOLER_MODES = ['auto', 'none', 'transaction', 'session'] as const;

export const clusterConfigShape = {
  ...baseConfigShape,
  /** HTTP port of a full node (seeds: node-a 9443, node-b 9444). */
  API_PORT: intFromEnv(0, 65_535).default(CONFIG_DEFAULTS.API_PORT),
  API_HOST: z.string().trim().min(1).default(CONFIG_DEFAULTS.API_HOST),
  /** Sync jobs one process runs at once (0 on a node disables its worker part). */
  WORKER_CONCURRENCY: intFromEnv(0, 64).default(CONFIG_DEFAULTS.WORKER_CONCURRENCY),
  /** Seconds between scheduler passes of the leader. */
  SCHEDULER_INTERVAL: intFromEnv(1, 3600).default(CONFIG_DEFAULTS.SCHEDULER_INTERVAL),
  /** Seconds between an idle worker's polls for jobs (0.5 minimum): bounds trigger → start latency. */
  QUEUE_POLL_INTERVAL: z.coerce.number().min(0.5).max(60).default(CONFIG_DEFAULTS.QUEUE_POLL_INTERVAL),
  /** How often pg-boss fails jobs whose worker stopped heart-beating and expires stale ones, seconds. */
  QUEUE_SUPERVISE_INTERVAL: intFromEnv(1, 3600).default(CONFIG_DEFAULTS.QUEUE_SUPERVISE_INTERVAL),
  /**
   * Pooler in front of PostgreSQL: `transaction` (pgbouncer/Supavisor transaction mode: no LISTEN/NOTIFY),
   * `session`, `none`, or `auto` (transaction mode when the URL is a Supabase pooler on port 6543).
   */
  DATABASE_POOLER: z.enum(POOLER_MODES).default(CONFIG_DEFAULTS.DATABASE_POOLER),
  DB_POOL_SIZE: intFromEnv(2, 200).default(CONFIG_DEFAULTS.DB_POOL_SIZE),
  /**
   * Seconds a pooled connection lives before it is closed and replaced (0 = forever). Each PostgreSQL backend
   * caches the definitions of every table it touched; a worker touches all tenants' 43 tables, so recycling
   * its connections keeps that cache, and the backend's memory, bounded.
   */
  DB_CONNECTION_LIFETIME: intFromEnv(0, 86_400).default(CONFIG_DEFAULTS.DB_CONNECTION_LIFETIME),
  // Fairness (see docs/operations.md, Sizing) ------------------------------------------------------------------
  /** A tenant whose SQLite file had at least this many MB at its last run is scheduled as large. */
  LARGE_TENANT_MB: intFromEnv(1, 1_000_000).default(CONFIG_DEFAULTS.LARGE_TENANT_MB),
  /** Most runs of large tenants at once in the whole cluster (keep it below the cluster's total slots). */
  LARGE_TENANT_CONCURRENCY: intFromEnv(1, 1000).default(CONFIG_DEFAULTS.LARGE_TENANT_CONCURRENCY),
  /** Most runs at once in the whole cluster of tenants whose last run failed. */
  FAILING_TENANT_CONCURRENCY: intFromEnv(1, 1000).default(CONFIG_DEFAULTS.FAILING_TENANT_CONCURRENCY),
  /** Seconds a graceful stop waits for running syncs before handing them back to the queue. */
  SHUTDOWN_TIMEOUT: intFromEnv(1, 3600).default(CONFIG_DEFAULTS.SHUTDOWN_TIMEOUT),
  /** Hosts silent for longer than this are marked offline by the leader (seconds). */
  OFFLINE_AFTER: intFromEnv(10, 86_400).default(CONFIG_DEFAULTS.OFFLINE_AFTER),
  ENABLE_API: booleanFromEnv.default(CONFIG_DEFAULTS.ENABLE_API),
  // Restore drills (docs/restore.md, "Restore drills") ------------------------------------------------------------
  /** Hours between two restore drills of a tenant, spread over that period by tenant; 0 turns scheduled drills off. */
  DRILL_INTERVAL_HOURS: intFromEnv(0, 8760).default(CONFIG_DEFAULTS.DRILL_INTERVAL_HOURS),
  /** Drills one process runs at once (0: this process runs none). */
  DRILL_CONCURRENCY: intFromEnv(0, 16).default(CONFIG_DEFAULTS.DRILL_CONCURRENCY),
  /** Directory for the drills' temporary databases (default: owui-sync-drills in the system temporary directory). */
  DRILL_DIR: z.string().trim().min(1).optional(),
  /** Days drill results are kept (each tenant's latest and latest passed drill are always kept). */
  DRILL_RETENTION_DAYS: intFromEnv(1, 36_500).default(CONFIG_DEFAULTS.DRILL_RETENTION_DAYS),
  // History retention (the leader's maintenance; see docs/operations.md) ---------------------------------------
  /** Prune old history at all (the leader only). */
  MAINTENANCE_ENABLED: booleanFromEnv.default(CONFIG_DEFAULTS.MAINTENANCE_ENABLED),
  /** Seconds between the leader's maintenance passes. */
  MAINTENANCE_INTERVAL: intFromEnv(10, 86_400).default(CONFIG_DEFAULTS.MAINTENANCE_INTERVAL),
  /** Most rows one maintenance batch deletes (one short transaction each). */
  MAINTENANCE_BATCH_SIZE: intFromEnv(1, 10_000).default(CONFIG_DEFAULTS.MAINTENANCE_BATCH_SIZE),
  /** Pause between two batches, milliseconds. */
  MAINTENANCE_PAUSE_MS: intFromEnv(0, 60_000).default(CONFIG_DEFAULTS.MAINTENANCE_PAUSE_MS),
  /** Days finished sync_jobs rows are kept (each tenant's latest job is always kept). */
  HISTORY_RETENTION_DAYS: intFromEnv(1, 36_500).default(CONFIG_DEFAULTS.HISTORY_RETENTION_DAYS),
  /** Hours the rows of runs that found the source unchanged are kept (at most HISTORY_RETENTION_DAYS). */
  SKIPPED_RUN_RETENTION_HOURS: intFromEnv(1, 876_000).default(CONFIG_DEFAULTS.SKIPPED_RUN_RETENTION_HOURS),
  /** Days resolved conflicts are kept, for tenants whose conflict config sets no resolution_log.retention_days. */
  CONFLICT_RETENTION_DAYS: intFromEnv(1, 36_500).default(CONFIG_DEFAULTS.CONFLICT_RETENTION_DAYS),
  /** Days resolved failed rows are kept (unresolved ones stay until they are resolved). */
  FAILED_ROW_RETENTION_DAYS: intFromEnv(1, 36_500).default(CONFIG_DEFAULTS.FAILED_ROW_RETENTION_DAYS),
  /** Hours cache invalidation events are kept. */
  CACHE_EVENTS_RETENTION_HOURS: intFromEnv(1, 876_000).default(CONFIG_DEFAULTS.CACHE_EVENTS_RETENTION_HOURS),
  /** Days the progress rows of tables that no longer exist in the tenant's schema are kept. */
  PROGRESS_RETENTION_DAYS: intFromEnv(1, 36_500).default(CONFIG_DEFAULTS.PROGRESS_RETENTION_DAYS),
} as const;

/** The cluster runtime's own cross-field check (the shared ones come with composeConfig). */
export function refineClusterConfig(
  cfg: { HISTORY_RETENTION_DAYS?: number; SKIPPED_RUN_RETENTION_HOURS?: number },
  ctx: z.RefinementCtx,
): void {
  if (
    cfg.HISTORY_RETENTION_DAYS !== undefined &&
    cfg.SKIPPED_RUN_RETENTION_HOURS !== undefined &&
    cfg.SKIPPED_RUN_RETENTION_HOURS > cfg.HISTORY_RETENTION_DAYS * 24
  ) {
    ctx.addIssue({
      code: 'custom',
      path: ['SKIPPED_RUN_RETENTION_HOURS'],
      message:
        `must not exceed HISTORY_RETENTION_DAYS (${cfg.HISTORY_RETENTION_DAYS} days = ` +
        `${cfg.HISTORY_RETENTION_DAYS * 24} hours): skipped runs are sync jobs too`,
    });
  }
}

/** A worker's configuration (base → cluster); a node adds the API's variables (apps/node). */
export const clusterConfigSchema = clusterConfigSchemaFor('worker');

/** base → cluster as one kind of process: the shared checks (named for that kind) and the cluster's own. */
export function clusterConfigSchemaFor(kind: ProcessKind) {
  return composeConfig(kind, clusterConfigShape).superRefine(refineClusterConfig);
}
export type ClusterConfig = z.infer<typeof clusterConfigSchema>;

/** True when connections go through a transaction-mode pooler (no LISTEN/NOTIFY, no session state). */
export function usesTransactionPooler(config: Pick<ClusterConfig, 'DATABASE_POOLER' | 'DATABASE_URL'>): boolean {
  if (config.DATABASE_POOLER === 'transaction') return true;
  if (config.DATABASE_POOLER !== 'auto' || !config.DATABASE_URL) return false;
  try {
    const url = new URL(config.DATABASE_URL);
    return /pooler\.supabase\.com$/i.test(url.hostname) && url.port === '6543';
  } catch {
    return false;
  }
}

/** The kinds of cluster process: full node, extra worker, scheduler only, API only (every configured kind but the CLI). */
export type ProcessKind = Exclude<ConfiguredKind, 'cli'>;

/** The process's identity in the host registry. */
export function processIdentity(
  config: Pick<ClusterConfig, 'CLUSTER_NAME' | 'ROLE' | 'HOST_NAME'>,
  kind: ProcessKind,
): { cluster: string; hostname: string; nodeName: string } {
  const hostname = config.HOST_NAME ?? os.hostname();
  // Scaled worker (scheduler, API) replicas share their environment; each one's container hostname keeps them apart.
  const nodeName = config.ROLE ?? (kind === 'node' ? 'node-a' : `${kind}-${os.hostname()}`.slice(0, 63).toLowerCase());
  return { cluster: config.CLUSTER_NAME, hostname, nodeName };
}
