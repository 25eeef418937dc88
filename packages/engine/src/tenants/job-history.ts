import type { Queryable } from '../db.ts';

/**
 * A cluster's sync job history (sync_metadata.sync_jobs), newest first, as GET /api/v1/sync/jobs, `syncctl jobs`
 * and the console menu list it. It lives with the tenants, not in ../sync/, because what it decides is which jobs
 * belong to the cluster: sync_jobs has no cluster column, so a job is the cluster's when its tenant is registered on
 * one of the cluster's hosts. A run writes these rows (../sync/job-record.ts); this only reads them.
 */

/**
 * One sync job. Counts and the duration come as text (bigint and numeric columns), so callers convert them the way
 * their output wants (the API as numbers, the CLI as it prints them).
 */
export type SyncJobRow = {
  job_id: string;
  client_name: string;
  queue_job_id: string | null;
  worker_id: string | null;
  status: string;
  sync_type: string;
  triggered_by: string;
  rows_synced: string;
  rows_failed: string;
  rows_deleted: string;
  conflicts_detected: number;
  conflicts_unresolved: number;
  duration_seconds: string | null;
  error: string | null;
  started_at: Date;
  completed_at: Date | null;
};

export type JobHistoryFilter = {
  /** Only this tenant's jobs. */
  readonly clientName?: string | undefined;
  /** Only jobs in this state (pending, running, success, failed, conflict). */
  readonly status?: string | undefined;
  /** At most this many, the newest. */
  readonly limit: number;
};

const JOB_HISTORY_SQL = `
  SELECT j.job_id::text AS job_id, j.client_name, j.queue_job_id, j.worker_id, j.status, j.sync_type,
         j.triggered_by, j.rows_synced::text AS rows_synced, j.rows_failed::text AS rows_failed,
         j.rows_deleted::text AS rows_deleted, j.conflicts_detected, j.conflicts_unresolved,
         j.duration_seconds::text AS duration_seconds, j.error, j.started_at, j.completed_at
    FROM sync_metadata.sync_jobs j
    JOIN sync_metadata.client_deployments d ON d.deployment_id = j.deployment_id
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text
     AND ($2::text IS NULL OR j.client_name = $2::text)
     AND ($3::text IS NULL OR j.status = $3::text)
   ORDER BY j.started_at DESC
   LIMIT $4::int`;

/** The cluster's most recent sync jobs, newest first, optionally of one tenant or in one state. */
export async function listSyncJobs(db: Queryable, cluster: string, filter: JobHistoryFilter): Promise<SyncJobRow[]> {
  const res = await db.query<SyncJobRow>(JOB_HISTORY_SQL, [
    cluster,
    filter.clientName ?? null,
    filter.status ?? null,
    filter.limit,
  ]);
  return res.rows;
}
