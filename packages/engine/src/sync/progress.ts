import type { Queryable } from '../db.ts';

/** Each table's sync_progress row: where a full sync resumes, the incremental cursor, rows done, deletes checked. */

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
