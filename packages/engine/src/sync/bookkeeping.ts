import type pg from 'pg';
import { ConflictError, NotFoundError } from '../errors.ts';
import { withTransaction, type DbScope, type Queryable } from '../db.ts';
import { recordHistoryRun, type SourceDdl } from './row-history.ts';

/**
 * sync_metadata bookkeeping of a run: the tenant's claim (one running sync per tenant, renewed while running, not a
 * session lock), the sync_jobs row, sync_progress per table, and the tenant's last_sync_* columns.
 */

export type Deployment = {
  deploymentId: string;
  clientName: string;
  schemaName: string;
  sqlitePath: string | null;
  status: string;
  syncEnabled: boolean;
  conflictStrategy: string;
  conflictConfig: unknown;
  sourceFingerprint: string | null;
  lastFullSyncAt: Date | null;
};

/** A second sync of a tenant was started while one is running (it must not run concurrently). */
export class SyncAlreadyRunningError extends ConflictError {
  constructor(clientName: string, jobId: string, claimedBy: string | null, expiresAt: Date) {
    super(
      `a sync of tenant "${clientName}" is already running (job ${jobId}${claimedBy ? ` on ${claimedBy}` : ''}); ` +
        'wait for it to finish or check: syncctl status',
      { jobId, claimedBy, expiresAt: expiresAt.toISOString() },
    );
  }
}

const DEPLOYMENT_COLUMNS = `deployment_id, client_name, schema_name, sqlite_path, status, sync_enabled,
  conflict_strategy, conflict_config, source_fingerprint, last_full_sync_at,
  sync_claim_job_id, sync_claimed_by, sync_claim_expires_at, sync_claim_expires_at > now() AS claim_live`;

type DeploymentRow = {
  deployment_id: string;
  client_name: string;
  schema_name: string;
  sqlite_path: string | null;
  status: string;
  sync_enabled: boolean;
  conflict_strategy: string;
  conflict_config: unknown;
  source_fingerprint: string | null;
  last_full_sync_at: Date | null;
  sync_claim_job_id: string | null;
  sync_claimed_by: string | null;
  sync_claim_expires_at: Date | null;
  claim_live: boolean | null;
};

function toDeployment(r: DeploymentRow): Deployment {
  return {
    deploymentId: r.deployment_id,
    clientName: r.client_name,
    schemaName: r.schema_name,
    sqlitePath: r.sqlite_path,
    status: r.status,
    syncEnabled: r.sync_enabled,
    conflictStrategy: r.conflict_strategy,
    conflictConfig: r.conflict_config,
    sourceFingerprint: r.source_fingerprint,
    lastFullSyncAt: r.last_full_sync_at,
  };
}

export const STOPPED_WORKER_ERROR =
  'the worker running this sync stopped, or could not reach PostgreSQL, before it recorded the end (its claim expired)';

/** Marks sync_jobs rows left 'running'/'pending' without a live claim as failed. Returns how many. */
async function failOrphanedJobs(client: Queryable, deploymentId: string, liveJobId: string | null): Promise<number> {
  const res = await client.query(
    `UPDATE sync_metadata.sync_jobs
        SET status = 'failed', completed_at = now(), updated_at = now(),
            duration_seconds = round(extract(epoch FROM (now() - started_at))::numeric, 3),
            error = $3::text || '; the next run resumes its work'
      WHERE deployment_id = $1::uuid AND status IN ('pending', 'running')
        AND job_id IS DISTINCT FROM $2::uuid`,
    [deploymentId, liveJobId, STOPPED_WORKER_ERROR],
  );
  return res.rowCount ?? 0;
}

export type ClaimResult = { jobId: string; deployment: Deployment; reapedJobs: number };

/**
 * Claims the tenant for one run: fails jobs of dead workers, refuses when another run holds a live claim, inserts
 * the sync_jobs row ('running') and sets last_sync_status = 'running'.
 */
export async function claimTenant(
  pool: pg.Pool,
  scope: DbScope,
  opts: {
    clientName: string;
    syncType: 'full' | 'incremental';
    triggeredBy: string;
    queueJobId?: string | undefined;
    workerId?: string | undefined;
    claimTtlSeconds: number;
  },
): Promise<ClaimResult> {
  return withTransaction(
    pool,
    async (client) => {
      const res = await client.query<DeploymentRow>(
        `SELECT ${DEPLOYMENT_COLUMNS} FROM sync_metadata.client_deployments WHERE client_name = $1::text FOR UPDATE`,
        [opts.clientName],
      );
      const row = res.rows[0];
      if (!row) {
        throw new NotFoundError(`tenant "${opts.clientName}" is not registered here; run: syncctl client list`, {
          clientName: opts.clientName,
        });
      }
      if (row.claim_live && row.sync_claim_job_id) {
        throw new SyncAlreadyRunningError(
          opts.clientName,
          row.sync_claim_job_id,
          row.sync_claimed_by,
          row.sync_claim_expires_at as Date,
        );
      }
      const reapedJobs = await failOrphanedJobs(client, row.deployment_id, null);
      const job = await client.query<{ job_id: string }>(
        `INSERT INTO sync_metadata.sync_jobs
           (deployment_id, client_name, queue_job_id, host_id, worker_id, status, sync_type, triggered_by)
         VALUES ($1::uuid, $2::text, $3::text, nullif($4::text, '')::uuid, $5::text, 'running', $6::text, $7::text)
         RETURNING job_id`,
        [
          row.deployment_id,
          row.client_name,
          opts.queueJobId ?? null,
          scope.hostId ?? '',
          opts.workerId ?? null,
          opts.syncType,
          opts.triggeredBy.slice(0, 200) || 'unknown',
        ],
      );
      const jobId = job.rows[0]?.job_id as string;
      await client.query(
        `UPDATE sync_metadata.client_deployments
            SET sync_claim_job_id = $2::uuid, sync_claimed_by = $3::text,
                sync_claim_expires_at = now() + make_interval(secs => $4::double precision),
                last_sync_status = 'running', updated_at = now()
          WHERE deployment_id = $1::uuid`,
        [row.deployment_id, jobId, opts.workerId ?? scope.hostId ?? null, opts.claimTtlSeconds],
      );
      return { jobId, deployment: toDeployment(row), reapedJobs };
    },
    scope,
  );
}

/** Extends the claim; false when it was lost (expired and taken over, or released). */
export async function renewClaim(
  pool: pg.Pool,
  scope: DbScope,
  deploymentId: string,
  jobId: string,
  ttlSeconds: number,
): Promise<boolean> {
  return withTransaction(
    pool,
    async (client) => {
      const res = await client.query(
        `UPDATE sync_metadata.client_deployments
            SET sync_claim_expires_at = now() + make_interval(secs => $3::double precision)
          WHERE deployment_id = $1::uuid AND sync_claim_job_id = $2::uuid`,
        [deploymentId, jobId, ttlSeconds],
      );
      return (res.rowCount ?? 0) > 0;
    },
    scope,
  );
}

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

export type JobOutcome = RunCounts & {
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
  outcome: JobOutcome,
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
          outcome.status,
          outcome.syncType,
          outcome.rowsSynced,
          outcome.rowsFailed,
          outcome.rowsDeleted,
          outcome.conflictsDetected,
          outcome.conflictsUnresolved,
          outcome.durationSeconds.toFixed(3),
          outcome.error,
          JSON.stringify(outcome.details),
        ],
      );
      await client.query(
        `UPDATE sync_metadata.client_deployments
            SET last_sync_at = now(), last_sync_status = $3::text,
                last_full_sync_at = CASE WHEN $4::boolean THEN now() ELSE last_full_sync_at END,
                source_fingerprint = CASE WHEN $3::text = 'failed' THEN NULL ELSE coalesce($5::text, source_fingerprint) END,
                sync_claim_job_id = NULL, sync_claimed_by = NULL, sync_claim_expires_at = NULL,
                updated_at = now()
          WHERE deployment_id = $1::uuid AND sync_claim_job_id = $2::uuid`,
        [deploymentId, jobId, outcome.status, outcome.fullSyncCompleted, outcome.sourceFingerprint],
      );
      // A run that did not fail is a point a restore can return to (a skipped run saw what the one before saw).
      if (outcome.status !== 'failed' && outcome.history) {
        await recordHistoryRun(client, deploymentId, jobId, outcome.history);
      }
    },
    scope,
  );
}

/**
 * Fails sync_jobs rows whose worker died: every 'running'/'pending' job of a tenant whose claim expired (or was
 * taken by another job). Call it periodically (the scheduler does) so a crashed worker's job does not stay
 * 'running'; the next run of the tenant also does it. Returns how many jobs were failed.
 */
export async function reapStaleSyncJobs(pool: pg.Pool, scope: DbScope): Promise<number> {
  return withTransaction(
    pool,
    async (client) => {
      const deployments = await client.query<{ deployment_id: string; live_job: string | null }>(
        `SELECT d.deployment_id,
                CASE WHEN d.sync_claim_expires_at > now() THEN d.sync_claim_job_id END AS live_job
           FROM sync_metadata.client_deployments d
          WHERE EXISTS (SELECT 1 FROM sync_metadata.sync_jobs j
                         WHERE j.deployment_id = d.deployment_id AND j.status IN ('pending', 'running'))
          FOR UPDATE OF d SKIP LOCKED`,
      );
      let total = 0;
      for (const d of deployments.rows) {
        const n = await failOrphanedJobs(client, d.deployment_id, d.live_job);
        if (n > 0 && d.live_job === null) {
          await client.query(
            `UPDATE sync_metadata.client_deployments
                SET last_sync_status = 'failed', sync_claim_job_id = NULL, sync_claimed_by = NULL,
                    sync_claim_expires_at = NULL, updated_at = now()
              WHERE deployment_id = $1::uuid`,
            [d.deployment_id],
          );
        }
        total += n;
      }
      return total;
    },
    scope,
  );
}

export type ProgressRow = {
  tableName: string;
  cursorValue: string | null;
  cursorKey: string | null;
  rowsDone: number;
  rowsTotal: number | null;
  phase: string;
  fullSyncPending: boolean;
  resumeKey: string | null;
  deletesCheckedAt: Date | null;
  lastFullSyncAt: Date | null;
  cursorReadAt: Date | null;
  /** Fingerprint of a cursor-less table's content as last applied (see incrementalTable). */
  contentFingerprint: string | null;
};

export async function loadProgress(client: Queryable, deploymentId: string): Promise<Map<string, ProgressRow>> {
  const res = await client.query<{
    table_name: string;
    cursor_value: string | null;
    cursor_key: string | null;
    rows_done: string;
    rows_total: string | null;
    phase: string;
    full_sync_pending: boolean;
    resume_key: string | null;
    deletes_checked_at: Date | null;
    last_full_sync_at: Date | null;
    cursor_read_at: Date | null;
    content_fingerprint: string | null;
  }>(
    `SELECT table_name, cursor_value, cursor_key, rows_done, rows_total, phase, full_sync_pending, resume_key,
            deletes_checked_at, last_full_sync_at, cursor_read_at, content_fingerprint
       FROM sync_metadata.sync_progress WHERE deployment_id = $1::uuid`,
    [deploymentId],
  );
  return new Map(
    res.rows.map((r) => [
      r.table_name,
      {
        tableName: r.table_name,
        cursorValue: r.cursor_value,
        cursorKey: r.cursor_key,
        rowsDone: Number(r.rows_done),
        rowsTotal: r.rows_total === null ? null : Number(r.rows_total),
        phase: r.phase,
        fullSyncPending: r.full_sync_pending,
        resumeKey: r.resume_key,
        deletesCheckedAt: r.deletes_checked_at,
        lastFullSyncAt: r.last_full_sync_at,
        cursorReadAt: r.cursor_read_at,
        contentFingerprint: r.content_fingerprint,
      },
    ]),
  );
}

export type ProgressUpdate = {
  phase?: 'idle' | 'running' | 'done' | 'failed';
  cursorValue?: string | null;
  cursorKey?: string | null;
  rowsDone?: number;
  rowsTotal?: number | null;
  fullSyncPending?: boolean;
  resumeKey?: string | null;
  deletesChecked?: boolean;
  fullSyncDone?: boolean;
  /** When the snapshot the cursor comes from was taken (stored with the cursor). */
  cursorReadAt?: Date;
};

/** Upserts one table's sync_progress row; only the given fields change. */
export async function saveProgress(
  client: Queryable,
  deploymentId: string,
  tableName: string,
  jobId: string,
  u: ProgressUpdate,
): Promise<void> {
  await client.query(
    `INSERT INTO sync_metadata.sync_progress AS p
       (deployment_id, table_name, cursor_value, cursor_key, rows_done, rows_total, phase, full_sync_pending,
        resume_key, deletes_checked_at, last_full_sync_at, last_job_id, last_run_at, updated_at)
     VALUES ($1::uuid, $2::text, $4::text, $5::text, coalesce($6::bigint, 0), $7::bigint, coalesce($8::text, 'idle'),
             coalesce($9::boolean, false), $10::text,
             CASE WHEN $11::boolean THEN now() END, CASE WHEN $12::boolean THEN now() END, $3::uuid, now(), now())
     ON CONFLICT (deployment_id, table_name) DO UPDATE SET
       cursor_value = CASE WHEN $13::boolean THEN EXCLUDED.cursor_value ELSE p.cursor_value END,
       cursor_key = CASE WHEN $13::boolean THEN EXCLUDED.cursor_key ELSE p.cursor_key END,
       rows_done = coalesce($6::bigint, p.rows_done),
       rows_total = CASE WHEN $14::boolean THEN EXCLUDED.rows_total ELSE p.rows_total END,
       phase = coalesce($8::text, p.phase),
       full_sync_pending = coalesce($9::boolean, p.full_sync_pending),
       resume_key = CASE WHEN $15::boolean THEN EXCLUDED.resume_key ELSE p.resume_key END,
       deletes_checked_at = CASE WHEN $11::boolean THEN now() ELSE p.deletes_checked_at END,
       last_full_sync_at = CASE WHEN $12::boolean THEN now() ELSE p.last_full_sync_at END,
       cursor_read_at = CASE WHEN $13::boolean THEN coalesce($16::timestamptz, p.cursor_read_at) ELSE p.cursor_read_at END,
       last_job_id = $3::uuid, last_run_at = now(), updated_at = now()`,
    [
      deploymentId,
      tableName,
      jobId,
      u.cursorValue ?? null,
      u.cursorKey ?? null,
      u.rowsDone ?? null,
      u.rowsTotal ?? null,
      u.phase ?? null,
      u.fullSyncPending ?? null,
      u.resumeKey ?? null,
      u.deletesChecked ?? false,
      u.fullSyncDone ?? false,
      'cursorValue' in u || 'cursorKey' in u,
      'rowsTotal' in u,
      'resumeKey' in u,
      u.cursorReadAt ?? null,
    ],
  );
}
