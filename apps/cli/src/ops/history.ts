import type pg from 'pg';
import { findConflict, listConflictLog, listSyncJobs, type ConflictOwner } from '@owui-sync/engine/tenants';
import { inCluster, validName } from './tenants.ts';

/** Recent sync jobs and conflicts of one cluster (the seeds' monitoring queries), in the shape syncctl prints. */

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
  const rows = await inCluster(pool, cluster, (c) =>
    listSyncJobs(c, cluster, { clientName: options.client, status: options.status, limit: options.limit }),
  );
  return rows.map((j) => ({
    job_id: j.job_id,
    client_name: j.client_name,
    started_at: j.started_at,
    completed_at: j.completed_at,
    status: j.status,
    sync_type: j.sync_type,
    triggered_by: j.triggered_by,
    rows_synced: j.rows_synced,
    rows_failed: j.rows_failed,
    conflicts_detected: j.conflicts_detected,
    conflicts_unresolved: j.conflicts_unresolved,
    duration_seconds: j.duration_seconds,
    worker_id: j.worker_id,
    error: j.error,
  }));
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
  const rows = await inCluster(pool, cluster, (c) =>
    listConflictLog(c, cluster, {
      clientName: options.client,
      resolved: options.includeResolved ? 'all' : false,
      limit: options.limit,
      withData: options.withData,
    }),
  );
  return rows.map((r) => ({
    log_id: r.log_id,
    client_id: r.client_id,
    table_name: r.table_name,
    row_key: r.row_key,
    conflict_type: r.conflict_type,
    resolution_strategy: r.resolution_strategy,
    resolution: r.resolution,
    detected_at: r.detected_at,
    resolved_at: r.resolved_at,
    resolved_by: r.resolved_by,
    ...(options.withData ? { source_data: r.source_data, target_data: r.target_data } : {}),
  }));
}

/** The conflict's tenant, so a resolution is only applied inside the operator's cluster. */
export async function conflictOwner(pool: pg.Pool, cluster: string, logId: number): Promise<ConflictOwner | undefined> {
  return inCluster(pool, cluster, (c) => findConflict(c, cluster, logId));
}
