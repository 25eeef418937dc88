import type pg from 'pg';
import { withTransaction, type DbScope, type Queryable } from '../db.ts';
import type { DrillChecks, DrillResult } from './drill-result.ts';

/** sync_state.restore_drills: recording drills and reading them back (API, CLI, dashboard). */

export async function recordDrill(pool: pg.Pool, scope: DbScope, deploymentId: string, r: DrillResult): Promise<void> {
  await withTransaction(
    pool,
    async (client) => {
      await client.query(
        `INSERT INTO sync_state.restore_drills
           (drill_id, deployment_id, passed, failure, triggered_by, queue_job_id, run_by, started_at, finished_at,
            duration_seconds, restore_seconds, rows_restored, revision, checks)
         VALUES ($1::uuid, $2::uuid, $3::boolean, $4::text, $5::text, $6::uuid, $7::text, $8::timestamptz,
                 $9::timestamptz, $10::numeric, $11::numeric, $12::bigint, $13::text, $14::jsonb)`,
        [
          r.drillId,
          deploymentId,
          r.passed,
          r.failure,
          r.triggeredBy,
          r.queueJobId,
          r.runBy,
          r.startedAt,
          r.finishedAt,
          r.durationSeconds.toFixed(3),
          r.restoreSeconds === null ? null : r.restoreSeconds.toFixed(3),
          r.rowsRestored,
          r.revision,
          JSON.stringify(r.checks),
        ],
      );
    },
    scope,
  );
}

export type DrillRecord = {
  drillId: string;
  clientName: string;
  passed: boolean;
  failure: string | null;
  triggeredBy: string;
  queueJobId: string | null;
  runBy: string | null;
  startedAt: Date;
  finishedAt: Date;
  durationSeconds: number;
  restoreSeconds: number | null;
  rowsRestored: number | null;
  revision: string | null;
  checks: DrillChecks;
};

type Row = {
  drill_id: string;
  client_name: string;
  passed: boolean;
  failure: string | null;
  triggered_by: string;
  queue_job_id: string | null;
  run_by: string | null;
  started_at: Date;
  finished_at: Date;
  duration_seconds: string;
  restore_seconds: string | null;
  rows_restored: string | null;
  revision: string | null;
  checks: DrillChecks;
};

/** A tenant's drills, newest first (run inside a transaction scoped to the caller's cluster). */
export async function listDrills(client: Queryable, clientName: string, limit = 20): Promise<DrillRecord[]> {
  const res = await client.query<Row>(
    `SELECT r.drill_id::text AS drill_id, d.client_name, r.passed, r.failure, r.triggered_by,
            r.queue_job_id::text AS queue_job_id, r.run_by, r.started_at, r.finished_at,
            r.duration_seconds::text AS duration_seconds, r.restore_seconds::text AS restore_seconds,
            r.rows_restored::text AS rows_restored, r.revision, r.checks
       FROM sync_state.restore_drills r JOIN sync_metadata.client_deployments d USING (deployment_id)
      WHERE d.client_name = $1::text
      ORDER BY r.started_at DESC, r.drill_id DESC
      LIMIT $2::integer`,
    [clientName, limit],
  );
  return res.rows.map((r) => ({
    drillId: r.drill_id,
    clientName: r.client_name,
    passed: r.passed,
    failure: r.failure,
    triggeredBy: r.triggered_by,
    queueJobId: r.queue_job_id,
    runBy: r.run_by,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationSeconds: Number(r.duration_seconds),
    restoreSeconds: r.restore_seconds === null ? null : Number(r.restore_seconds),
    rowsRestored: r.rows_restored === null ? null : Number(r.rows_restored),
    revision: r.revision,
    checks: r.checks,
  }));
}
