import type pg from 'pg';
import { inCluster, validName } from './tenants.ts';

/** Recent sync jobs and conflicts of one cluster (the seeds' monitoring queries). */

export type JobRow = {
  job_id: string;
  client_name: string;
  started_at: Date;
  completed_at: Date | null;
  status: string;
  sync_type: string;
  triggered_by: string;
  rows_synced: string;
  rows_failed: string;
  conflicts_detected: number;
  conflicts_unresolved: number;
  duration_seconds: string | null;
  worker_id: string | null;
  error: string | null;
};

export async function recentJobs(
  pool: pg.Pool,
  cluster: string,
  options: { client?: string | undefined; status?: string | undefined; limit: number },
): Promise<JobRow[]> {
  if (options.client) validName(options.client);
  return inCluster(pool, cluster, async (c) => {
    const r = await c.query<JobRow>(
      `SELECT j.job_id, j.client_name, j.started_at, j.completed_at, j.status, j.sync_type, j.triggered_by,
              j.rows_synced, j.rows_failed, j.conflicts_detected, j.conflicts_unresolved, j.duration_seconds,
              j.worker_id, j.error
         FROM sync_metadata.sync_jobs j
         JOIN sync_metadata.client_deployments d ON d.deployment_id = j.deployment_id
         JOIN sync_metadata.hosts h ON h.host_id = d.host_id
        WHERE h.cluster_name = $1::text AND ($2::text IS NULL OR j.client_name = $2::text)
          AND ($4::text IS NULL OR j.status = $4::text)
        ORDER BY j.started_at DESC
        LIMIT $3::int`,
      [cluster, options.client ?? null, options.limit, options.status ?? null],
    );
    return r.rows;
  });
}

export type ConflictRow = {
  log_id: string;
  client_id: string;
  table_name: string;
  row_key: unknown;
  conflict_type: string;
  resolution_strategy: string;
  resolution: string | null;
  detected_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  source_data?: unknown;
  target_data?: unknown;
};

export async function listConflicts(
  pool: pg.Pool,
  cluster: string,
  options: { client?: string | undefined; limit: number; includeResolved: boolean; withData: boolean },
): Promise<ConflictRow[]> {
  if (options.client) validName(options.client);
  return inCluster(pool, cluster, async (c) => {
    const r = await c.query<ConflictRow>(
      `SELECT c.log_id, c.client_id, c.table_name, c.row_key, c.conflict_type, c.resolution_strategy, c.resolution,
              c.detected_at, c.resolved_at, c.resolved_by
              ${options.withData ? ', c.source_data, c.target_data' : ''}
         FROM sync_metadata.conflict_log c
         JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
         JOIN sync_metadata.hosts h ON h.host_id = d.host_id
        WHERE h.cluster_name = $1::text
          AND ($2::text IS NULL OR c.client_id = $2::text)
          AND ($3::boolean OR c.resolved_at IS NULL)
        ORDER BY c.detected_at DESC, c.log_id DESC
        LIMIT $4::int`,
      [cluster, options.client ?? null, options.includeResolved, options.limit],
    );
    return r.rows;
  });
}

/** The conflict's tenant, so a resolution is only applied inside the operator's cluster. */
export async function conflictOwner(
  pool: pg.Pool,
  cluster: string,
  logId: number,
): Promise<{ client_id: string; resolved_at: Date | null; resolution_strategy: string } | undefined> {
  return inCluster(pool, cluster, async (c) => {
    const r = await c.query<{ client_id: string; resolved_at: Date | null; resolution_strategy: string }>(
      `SELECT c.client_id, c.resolved_at, c.resolution_strategy
         FROM sync_metadata.conflict_log c
         JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
         JOIN sync_metadata.hosts h ON h.host_id = d.host_id
        WHERE c.log_id = $1::bigint AND h.cluster_name = $2::text`,
      [logId, cluster],
    );
    return r.rows[0];
  });
}
