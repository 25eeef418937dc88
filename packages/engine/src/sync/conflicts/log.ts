import type pg from 'pg';
import type { ConflictTally, RunContext } from '../run-context.ts';
import { STAGE, keyExpression, type TablePlan } from '../table-plan.ts';
import type { Resolution } from './decide.ts';

/**
 * What a run records about the conflicts it met: one conflict_log entry per row (with both versions unless the
 * configuration leaves them out; an open entry is refreshed, not duplicated), the run's tally, and the warning of a
 * table whose strategy asks to be notified.
 */

export async function logConflicts(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  keys: string[],
  strategy: string,
  resolution: Resolution,
  withData: boolean,
): Promise<void> {
  const kS = keyExpression('s', plan.key);
  const from = `FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
      LEFT JOIN sync_state.row_state r ON r.deployment_id = $2::uuid AND r.table_name = $4::text AND r.row_key = ${kS}
     WHERE ${kS} = ANY($7::text[])`;
  if (resolution === 'pending') {
    // One open entry per row: refresh it instead of piling up duplicates run after run.
    await client.query(
      `UPDATE sync_metadata.conflict_log c
          SET source_data = x.sd, target_data = x.td, job_id = $3::uuid, detected_at = now()
         FROM (SELECT ${plan.sql.keyJson} AS rk, ${plan.sql.snapshotStage} AS sd, ${plan.sql.snapshotTarget} AS td
                 ${from}) x
        WHERE c.deployment_id = $2::uuid AND c.table_name = $4::text AND c.resolved_at IS NULL AND c.row_key = x.rk
          AND $1::text IS NOT NULL AND $5::text IS NOT NULL AND $6::text IS NOT NULL`,
      [ctx.clientName, ctx.deploymentId, ctx.jobId, plan.name, strategy, resolution, keys],
    );
  }
  await client.query(
    `INSERT INTO sync_metadata.conflict_log
       (client_id, deployment_id, job_id, table_name, row_key, conflict_type, source_data, target_data, base_hash,
        resolution_strategy, resolution, resolved_at, resolved_by)
     SELECT $1::text, $2::uuid, $3::uuid, $4::text, ${plan.sql.keyJson}, 'update_update',
            CASE WHEN $8::boolean THEN ${plan.sql.snapshotStage} END,
            CASE WHEN $8::boolean THEN ${plan.sql.snapshotTarget} END,
            r.target_hash::text, $5::text, $6::text,
            CASE WHEN $6::text = 'pending' THEN NULL ELSE now() END,
            CASE WHEN $6::text = 'pending' THEN NULL ELSE 'automatic' END
       ${from}
        AND NOT ($6::text = 'pending' AND EXISTS (
              SELECT 1 FROM sync_metadata.conflict_log c
               WHERE c.deployment_id = $2::uuid AND c.table_name = $4::text AND c.resolved_at IS NULL
                 AND c.row_key = ${plan.sql.keyJson}))`,
    [ctx.clientName, ctx.deploymentId, ctx.jobId, plan.name, strategy, resolution, keys, withData],
  );
}

/** Counts a settled (or pending) group in the run's tally. */
export function countConflicts(
  tally: ConflictTally,
  table: string,
  strategy: string,
  resolution: Resolution,
  n: number,
): void {
  tally.detected += n;
  tally.byTable[table] = (tally.byTable[table] ?? 0) + n;
  if (resolution === 'pending') tally.pending += n;
  else tally.resolved[strategy] = (tally.resolved[strategy] ?? 0) + n;
}

/** The warning of a table whose strategy has `notify` set: how many conflicts, how many wait, where to review them. */
export function notifyConflicts(
  ctx: RunContext,
  table: string,
  strategy: string,
  conflicts: number,
  waiting: number,
): void {
  ctx.logger.warn(
    { table, conflicts, pending: waiting },
    `tenant "${ctx.clientName}": ${conflicts} conflict(s) in table ${table} (strategy ` +
      `${strategy}${waiting ? `, ${waiting} awaiting a decision` : ''}); review them: ` +
      `syncctl conflicts --client ${ctx.clientName}`,
  );
}
