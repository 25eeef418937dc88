import type pg from 'pg';
import { quoteIdent } from '@owui-sync/schema';
import type { RunContext } from '../run-context.ts';
import { STAGE, keyExpression, type TablePlan } from '../table-plan.ts';
import { HISTORY_INSERT } from '../row-history.ts';
import type { Resolution } from './decide.ts';

/**
 * Writes an automatic resolution of a group of staged conflicting rows: the source version over the target, a merged
 * row, or the target kept; then records what each side looks like now, so the next sync does not raise the same
 * conflict again. The version a write replaces is kept in the row history.
 */

/** Applies `resolution` to the conflicting keys `keys` of the staged chunk; returns how many rows were written. */
export async function applyResolution(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  resolution: Resolution,
  keys: string[],
  merged: ReadonlyMap<string, Record<string, string | null>>,
): Promise<number> {
  let written = 0;
  if (resolution === 'source') {
    const res = await client.query<{ n: number }>(sourceWriteSql(plan), [ctx.deploymentId, plan.name, ctx.jobId, keys]);
    written += res.rows[0]?.n ?? 0;
  } else if (resolution === 'merged') {
    for (const key of keys) {
      await client.query(mergeWriteSql(plan, Object.keys(merged.get(key) ?? {})), [
        key,
        JSON.stringify(merged.get(key) ?? {}),
        ctx.deploymentId,
        plan.name,
        ctx.jobId,
      ]);
      written += 1;
    }
    await recordMergedData(client, ctx, plan, keys);
  }
  if (resolution !== 'pending' && resolution !== 'source') {
    await client.query(acceptHashesSql(plan), [ctx.deploymentId, plan.name, ctx.jobId, keys]);
  }
  return written;
}

/** The merged rows as written, in their conflict_log entries (resolved_data). */
async function recordMergedData(
  client: pg.ClientBase,
  ctx: RunContext,
  plan: TablePlan,
  keys: string[],
): Promise<void> {
  const kS = keyExpression('s', plan.key);
  await client.query(
    `UPDATE sync_metadata.conflict_log c SET resolved_data = x.snap
       FROM (SELECT ${kS} AS k, ${plan.sql.snapshotTarget} AS snap
               FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
              WHERE ${kS} = ANY($3::text[])) x
      WHERE c.job_id = $1::uuid AND c.table_name = $2::text AND c.resolution = 'merged'
        AND c.row_key = (SELECT ${plan.sql.keyJson} FROM ${plan.target} t WHERE ${keyExpression('t', plan.key)} = x.k)`,
    [ctx.jobId, plan.name, keys],
  );
}

function sourceWriteSql(plan: TablePlan): string {
  const kS = keyExpression('s', plan.key);
  const cols = plan.columns.map(quoteIdent).join(', ');
  const nonKey = plan.columns.filter((c) => !plan.key.includes(c));
  const set = nonKey.length
    ? `DO UPDATE SET ${nonKey.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`
    : 'DO NOTHING';
  const exprs = plan.columns.map((c, i) =>
    plan.kinds[i] === 'text-cast' ? `s.${quoteIdent(c)}::${plan.types[i]} AS ${quoteIdent(c)}` : `s.${quoteIdent(c)}`,
  );
  return `WITH w AS MATERIALIZED (
      SELECT ${exprs.join(', ')}, ${plan.sql.hashStage} AS __h, ${kS} AS __k
        FROM pg_temp.${STAGE} s WHERE ${kS} = ANY($4::text[])
    ), hv AS (
      ${HISTORY_INSERT}
      SELECT $1::uuid, $2::text, w.__k, now(), $3::uuid, ${plan.sql.historyData}
        FROM w JOIN ${plan.target} t ON ${plan.key.map((k) => `t.${quoteIdent(k)} = w.${quoteIdent(k)}`).join(' AND ')}
      RETURNING 1
    ), ins AS (
      INSERT INTO ${plan.target} (${cols}) SELECT ${cols} FROM w
      ON CONFLICT (${plan.key.map(quoteIdent).join(', ')}) ${set} RETURNING 1
    ), rs AS (
      INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
      SELECT $1::uuid, $2::text, __k, __h, __h, $3::uuid FROM w
      ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
        SET source_hash = EXCLUDED.source_hash, target_hash = EXCLUDED.target_hash, deleted_at = NULL,
            job_id = EXCLUDED.job_id, updated_at = now()
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT count(*) FROM rs)::int AS tracked`;
}

/** After keeping the target (or merging into it): remember what each side looks like now. */
function acceptHashesSql(plan: TablePlan): string {
  const kS = keyExpression('s', plan.key);
  return `INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash, job_id)
    SELECT $1::uuid, $2::text, ${kS}, ${plan.sql.hashStage}, ${plan.sql.hashTarget}, $3::uuid
      FROM pg_temp.${STAGE} s JOIN ${plan.target} t ON ${plan.sql.joinStageTarget}
     WHERE ${kS} = ANY($4::text[])
    ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
      SET source_hash = EXCLUDED.source_hash, target_hash = EXCLUDED.target_hash, job_id = EXCLUDED.job_id,
          deleted_at = NULL, updated_at = now()`;
}

function mergeWriteSql(plan: TablePlan, columns: string[]): string {
  const set = columns
    .map(
      (c) => `${quoteIdent(c)} = ($2::jsonb ->> '${c.replaceAll("'", "''")}')::${plan.types[plan.columns.indexOf(c)]}`,
    )
    .join(', ');
  // The version the merge replaces is kept in the row history first.
  return `WITH hv AS (
      ${HISTORY_INSERT}
      SELECT $3::uuid, $4::text, $1::text, now(), $5::uuid, ${plan.sql.historyData}
        FROM ${plan.target} t WHERE ${keyExpression('t', plan.key)} = $1::text RETURNING 1)
    UPDATE ${plan.target} t SET ${set} WHERE ${keyExpression('t', plan.key)} = $1::text`;
}
