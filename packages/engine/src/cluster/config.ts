import os from 'node:os';
import { z } from 'zod';
import { baseConfigShape, booleanFromEnv, intFromEnv } from '../../../schema/src/index.ts';

/**
 * Environment of the node and worker processes: the shared variables (DATABASE_URL, CLUSTER_NAME, ROLE,
 * HOST_NAME, HEARTBEAT_INTERVAL, LEASE_DURATION, …) plus the cluster runtime's own.
 */
export const POOLER_MODES = ['auto', 'none', 'transaction', 'session'] as const;

export const clusterConfigShape = {
  ...baseConfigShape,
  /** HTTP port of a full node (seeds: node-a 9443, node-b 9444). */
  API_PORT: intFromEnv(0, 65_535).default(9443),
  API_HOST: z.string().trim().min(1).default('0.0.0.0'),
  /** Sync jobs one process runs at once (0 on a node disables its worker part). */
  WORKER_CONCURRENCY: intFromEnv(0, 64).default(2),
  /** Seconds between scheduler passes of the leader. */
  SCHEDULER_INTERVAL: intFromEnv(1, 3600).default(5),
  /** Seconds between an idle worker's polls for jobs (0.5 minimum): bounds trigger → start latency. */
  QUEUE_POLL_INTERVAL: z.coerce.number().min(0.5).max(60).default(0.5),
  /** How often pg-boss fails jobs whose worker stopped heart-beating and expires stale ones, seconds. */
  QUEUE_SUPERVISE_INTERVAL: intFromEnv(1, 3600).default(10),
  /**
   * Pooler in front of PostgreSQL: `transaction` (pgbouncer/Supavisor transaction mode: no LISTEN/NOTIFY),
   * `session`, `none`, or `auto` (transaction mode when the URL is a Supabase pooler on port 6543).
   */
  DATABASE_POOLER: z.enum(POOLER_MODES).default('auto'),
  DB_POOL_SIZE: intFromEnv(2, 200).default(10),
  /**
   * Seconds a pooled connection lives before it is closed and replaced (0 = forever). Each PostgreSQL backend
   * caches the definitions of every table it touched; a worker touches all tenants' 43 tables, so recycling
   * its connections keeps that cache, and the backend's memory, bounded.
   */
  DB_CONNECTION_LIFETIME: intFromEnv(0, 86_400).default(300),
  // Fairness (see docs/operations.md, Sizing) ------------------------------------------------------------------
  /** A tenant whose SQLite file had at least this many MB at its last run is scheduled as large. */
  LARGE_TENANT_MB: intFromEnv(1, 1_000_000).default(256),
  /** Most runs of large tenants at once in the whole cluster (keep it below the cluster's total slots). */
  LARGE_TENANT_CONCURRENCY: intFromEnv(1, 1000).default(1),
  /** Most runs at once in the whole cluster of tenants whose last run failed. */
  FAILING_TENANT_CONCURRENCY: intFromEnv(1, 1000).default(1),
  /** Seconds a graceful stop waits for running syncs before handing them back to the queue. */
  SHUTDOWN_TIMEOUT: intFromEnv(1, 3600).default(30),
  /**
   * Seconds a running sync's claim on its tenant lasts without renewal (renewed every third of it). After a worker
   * dies, the tenant can be synced again once its claim has lapsed.
   */
  SYNC_CLAIM_TTL: intFromEnv(3, 3600).default(30),
  /** Hosts silent for longer than this are marked offline by the leader (seconds). */
  OFFLINE_AFTER: intFromEnv(10, 86_400).default(300),
  ENABLE_API: booleanFromEnv.default(true),
  // History retention (the leader's maintenance; see docs/operations.md) ---------------------------------------
  /** Prune old history at all (the leader only). */
  MAINTENANCE_ENABLED: booleanFromEnv.default(true),
  /** Seconds between the leader's maintenance passes. */
  MAINTENANCE_INTERVAL: intFromEnv(10, 86_400).default(300),
  /** Most rows one maintenance batch deletes (one short transaction each). */
  MAINTENANCE_BATCH_SIZE: intFromEnv(1, 10_000).default(1000),
  /** Pause between two batches, milliseconds. */
  MAINTENANCE_PAUSE_MS: intFromEnv(0, 60_000).default(100),
  /** Days finished sync_jobs rows are kept (each tenant's latest job is always kept). */
  HISTORY_RETENTION_DAYS: intFromEnv(1, 36_500).default(30),
  /** Hours the rows of runs that found the source unchanged are kept (at most HISTORY_RETENTION_DAYS). */
  SKIPPED_RUN_RETENTION_HOURS: intFromEnv(1, 876_000).default(24),
  /** Days resolved conflicts are kept, for tenants whose conflict config sets no resolution_log.retention_days. */
  CONFLICT_RETENTION_DAYS: intFromEnv(1, 36_500).default(30),
  /** Days resolved failed rows are kept (unresolved ones stay until they are resolved). */
  FAILED_ROW_RETENTION_DAYS: intFromEnv(1, 36_500).default(30),
  /** Hours cache invalidation events are kept. */
  CACHE_EVENTS_RETENTION_HOURS: intFromEnv(1, 876_000).default(24),
  /** Days the progress rows of tables that no longer exist in the tenant's schema are kept. */
  PROGRESS_RETENTION_DAYS: intFromEnv(1, 36_500).default(7),
} as const;

/** Cross-field checks shared by every schema built on clusterConfigShape. */
export function refineClusterConfig(
  cfg: {
    LEASE_DURATION: number;
    HEARTBEAT_INTERVAL: number;
    DATABASE_URL?: string | undefined;
    HISTORY_RETENTION_DAYS?: number;
    SKIPPED_RUN_RETENTION_HOURS?: number;
  },
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
  if (cfg.LEASE_DURATION <= cfg.HEARTBEAT_INTERVAL) {
    ctx.addIssue({
      code: 'custom',
      path: ['LEASE_DURATION'],
      message: `must be greater than HEARTBEAT_INTERVAL (${cfg.HEARTBEAT_INTERVAL}) so a live leader renews in time`,
    });
  }
  if (!cfg.DATABASE_URL) {
    ctx.addIssue({
      code: 'custom',
      path: ['DATABASE_URL'],
      message: 'is required (the service-role URL; or SYNC_URL in .credentials)',
    });
  }
}

export const clusterConfigSchema = z.object(clusterConfigShape).superRefine(refineClusterConfig);
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

/** The process's identity in the host registry. */
export function processIdentity(
  config: Pick<ClusterConfig, 'CLUSTER_NAME' | 'ROLE' | 'HOST_NAME'>,
  kind: 'node' | 'worker',
): { cluster: string; hostname: string; nodeName: string } {
  const hostname = config.HOST_NAME ?? os.hostname();
  // Scaled worker replicas share their environment; each one's container hostname keeps them apart.
  const nodeName = config.ROLE ?? (kind === 'node' ? 'node-a' : `worker-${os.hostname()}`.slice(0, 63).toLowerCase());
  return { cluster: config.CLUSTER_NAME, hostname, nodeName };
}
