import type pg from 'pg';
import { withTransaction, type DbScope } from '../db.ts';
import { recordHistoryRun, type SourceDdl } from './row-history.ts';

/** The end of a run as sync_metadata keeps it: the sync_jobs row, the tenant's last_sync_* columns, claim released. */

/** What a run did, as recorded in sync_jobs and returned to the caller. */
export type RunCounts = {
  syncType: 'full' | 'incremental';
  rowsSynced: number;
  rowsFailed: number;
  rowsDeleted: number;
  conflictsDetected: number;
  conflictsUnresolved: number;
  durationSeconds: number;
};

/** Everything recorded when a run ends. */
export type JobRecord = RunCounts & {
  status: 'success' | 'failed' | 'conflict';
  error: string | null;
  details: Record<string, unknown>;
  sourceFingerprint: string | null;
  fullSyncCompleted: boolean;
  /** The snapshot's DDL and revision, for the row history (absent when the run read no snapshot). */
  history?: SourceDdl | undefined;
};

/** Writes the final sync_jobs row, the tenant's last_sync_* columns, and releases the claim. */
export async function finishJob(
  pool: pg.Pool,
  scope: DbScope,
  deploymentId: string,
  jobId: string,
  record: JobRecord,
): Promise<void> {
  await withTransaction(
    pool,
    async (client) => {
      await client.query(
        `UPDATE sync_metadata.sync_jobs
            SET status = $2::text, sync_type = $3::text, rows_synced = $4::bigint, rows_failed = $5::bigint,
                rows_deleted = $6::bigint, conflicts_detected = $7::integer, conflicts_unresolved = $8::integer,
                duration_seconds = $9::numeric, error = $10::text, details = $11::jsonb,
                completed_at = now(), updated_at = now()
          WHERE job_id = $1::uuid`,
        [
          jobId,
          record.status,
          record.syncType,
          record.rowsSynced,
          record.rowsFailed,
          record.rowsDeleted,
          record.conflictsDetected,
          record.conflictsUnresolved,
          record.durationSeconds.toFixed(3),
          record.error,
          JSON.stringify(record.details),
        ],
      );
      await client.query(
        `UPDATE sync_metadata.client_deployments
            SET last_sync_at = now(), last_sync_status = $3::text,
                last_full_sync_at = CASE WHEN $4::boolean THEN now() ELSE last_full_sync_at END,
                source_fingerprint = CASE WHEN $3::text = 'failed' THEN NULL ELSE coalesce($5::text, source_fingerprint) END,
                sync_claim_job_id = NULL, sync_claimed_by = NULL, sync_claim_expires_at = NULL, sync_claim_group = NULL,
                updated_at = now()
          WHERE deployment_id = $1::uuid AND sync_claim_job_id = $2::uuid`,
        [deploymentId, jobId, record.status, record.fullSyncCompleted, record.sourceFingerprint],
      );
      // A run that did not fail is a point a restore can return to (a skipped run saw what the one before saw).
      if (record.status !== 'failed' && record.history) {
        await recordHistoryRun(client, deploymentId, jobId, record.history);
      }
    },
    scope,
  );
}
