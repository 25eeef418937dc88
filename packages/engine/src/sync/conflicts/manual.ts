import type pg from 'pg';
import { quoteIdent } from '@owui-sync/schema';
import { ConflictError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { withTransaction, type DbScope } from '../../db.ts';
import { keyExpression } from '../table-plan.ts';
import { HISTORY_INSERT, historyDataSql } from '../row-history.ts';
import { readTargetSchema } from '../target-schema.ts';

/** A person's decision on a conflict left for one (the manual strategy), applied outside any sync run. */

/**
 * A merged row may only name columns of the table, must keep the conflict's key, and must set at least one column
 * that is not part of the key:
 * anything else would close the conflict as "merged" with the name of a column silently ignored.
 */
function assertMergeColumns(
  logId: number,
  table: string,
  target: { columns: readonly { name: string }[]; key: readonly string[] },
  data: Record<string, unknown>,
  rowKey: Record<string, unknown>,
): void {
  const names = new Set(target.columns.map((c) => c.name));
  const unknown = Object.keys(data).filter((k) => !names.has(k));
  if (unknown.length > 0) {
    throw new InvalidInputError(
      `table ${table} has no column ${unknown.map((k) => JSON.stringify(k)).join(', ')}; conflict ${logId} was left ` +
        `open and nothing was written (columns: ${[...names].join(', ')})`,
      { unknownColumns: unknown },
    );
  }
  const moved = target.key.filter((k) => k in data && data[k] !== null && String(data[k]) !== String(rowKey[k]));
  if (moved.length > 0) {
    throw new InvalidInputError(
      `the merged row names another row than conflict ${logId} (${moved
        .map((k) => `${k} ${JSON.stringify(data[k])} instead of ${JSON.stringify(rowKey[k])}`)
        .join(', ')}); a resolution cannot change the key — leave the key out of data; the conflict was left open`,
    );
  }
  if (!Object.keys(data).some((k) => !target.key.includes(k))) {
    throw new InvalidInputError(
      `the merged row for conflict ${logId} sets no column besides the key (${target.key.join(', ')}); give the ` +
        'columns to write, or keep "source" or "target"; the conflict was left open',
    );
  }
}

/**
 * Applies a person's decision to a conflict_log row: keep the source version, keep the target version, or write
 * supplied data (same shape as source_data: json columns as their JSON text). Records resolution, resolved_by and
 * resolved_at, and updates the bookkeeping so the next sync neither re-raises the conflict nor undoes the choice.
 */
export async function resolveConflict(opts: {
  pool: pg.Pool;
  scope: DbScope;
  logId: number;
  keep?: 'source' | 'target';
  data?: Record<string, unknown>;
  resolvedBy: string;
}): Promise<{ logId: number; resolution: 'source' | 'target' | 'merged' }> {
  if ((opts.keep === undefined) === (opts.data === undefined)) {
    throw new InvalidInputError('give exactly one of keep ("source" or "target") or data (the merged row)');
  }
  if (!opts.resolvedBy.trim()) throw new InvalidInputError('resolvedBy must name who resolved the conflict');
  return withTransaction(
    opts.pool,
    async (client) => {
      const res = await client.query<{
        deployment_id: string;
        table_name: string;
        row_key: Record<string, unknown>;
        resolved_at: Date | null;
        resolved_by: string | null;
        schema_name: string;
        has_source: boolean;
      }>(
        `SELECT c.deployment_id, c.table_name, c.row_key, c.resolved_at, c.resolved_by, d.schema_name,
                c.source_data IS NOT NULL AS has_source
           FROM sync_metadata.conflict_log c
           JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
          WHERE c.log_id = $1::bigint FOR UPDATE OF c`,
        [opts.logId],
      );
      const row = res.rows[0];
      if (!row) throw new NotFoundError(`conflict ${opts.logId} does not exist (or belongs to another cluster)`);
      if (row.resolved_at) {
        throw new ConflictError(
          `conflict ${opts.logId} was already resolved by ${row.resolved_by ?? 'someone'} at ${row.resolved_at.toISOString()}`,
        );
      }
      const target = (await readTargetSchema(client, row.schema_name)).tables.get(row.table_name);
      if (!target || target.key.length === 0) {
        throw new NotFoundError(
          `table ${row.table_name} of conflict ${opts.logId} no longer exists in ${row.schema_name}`,
        );
      }
      if (opts.data) assertMergeColumns(opts.logId, row.table_name, target, opts.data, row.row_key);
      const t = `${quoteIdent(row.schema_name)}.${quoteIdent(row.table_name)}`;
      const types = new Map(target.columns.map((c) => [c.name, c.type]));
      const typed = (src: string, c: string) => `(${src} ->> '${c.replaceAll("'", "''")}')::${types.get(c)}`;
      const hashOf = (src: string) =>
        `hash_record_extended(ROW(${target.columns
          .map((c) => (c.type === 'json' ? `${typed(src, c.name)}::text` : typed(src, c.name)))
          .join(', ')}), 0)`;
      const tHash = `hash_record_extended(ROW(${target.columns
        .map((c) => (c.type === 'json' ? `t.${quoteIdent(c.name)}::text` : `t.${quoteIdent(c.name)}`))
        .join(', ')}), 0)`;
      const keyMatch = target.key.map((k) => `t.${quoteIdent(k)} = ${typed('$2::jsonb', k)}`).join(' AND ');
      const resolution: 'source' | 'target' | 'merged' = opts.data ? 'merged' : (opts.keep as 'source' | 'target');
      let written: Record<string, unknown> | null = null;
      if (resolution !== 'target') {
        if (resolution === 'source' && !row.has_source) {
          throw new ConflictError(
            `conflict ${opts.logId} has no source snapshot to keep; keep the target or supply data`,
          );
        }
        const dataParam =
          resolution === 'source'
            ? `(SELECT source_data FROM sync_metadata.conflict_log WHERE log_id = $1::bigint)`
            : '$3::jsonb';
        const cols = target.columns.filter((c) => resolution === 'source' || (opts.data && c.name in opts.data));
        const set = cols
          .filter((c) => !target.key.includes(c.name))
          .map((c) => `${quoteIdent(c.name)} = ${typed('d.v', c.name)}`);
        if (set.length > 0) {
          // The version a person's decision replaces is kept in the row history too (no run: no job id).
          await client.query(
            `${HISTORY_INSERT}
             SELECT $3::uuid, $4::text, ${keyExpression('t', target.key)}, now(), NULL,
                    ${historyDataSql(
                      't',
                      target.columns.map((c) => c.name),
                      target.columns.map((c) => c.type),
                    )}
               FROM ${t} t WHERE ${keyMatch} AND $1::bigint IS NOT NULL`,
            [opts.logId, row.row_key, row.deployment_id, row.table_name],
          );
          await client.query(
            `UPDATE ${t} t SET ${set.join(', ')} FROM (SELECT ${dataParam} AS v) d WHERE ${keyMatch} AND $1::bigint IS NOT NULL`,
            resolution === 'source' ? [opts.logId, row.row_key] : [opts.logId, row.row_key, JSON.stringify(opts.data)],
          );
        }
        written = resolution === 'merged' ? (opts.data ?? null) : null;
      }
      await client.query(
        `INSERT INTO sync_state.row_state AS r (deployment_id, table_name, row_key, source_hash, target_hash)
         SELECT $3::uuid, $4::text, ${keyExpression('t', target.key)},
                CASE WHEN c.source_data IS NULL THEN NULL ELSE ${hashOf('c.source_data')} END, ${tHash}
           FROM ${t} t, sync_metadata.conflict_log c
          WHERE c.log_id = $1::bigint AND ${keyMatch}
         ON CONFLICT (deployment_id, table_name, row_key) DO UPDATE
           SET source_hash = coalesce(EXCLUDED.source_hash, r.source_hash), target_hash = EXCLUDED.target_hash,
               updated_at = now()`,
        [opts.logId, row.row_key, row.deployment_id, row.table_name],
      );
      await client.query(
        `UPDATE sync_metadata.conflict_log
            SET resolution = $2::text, resolved_at = now(), resolved_by = $3::text,
                resolved_data = CASE WHEN $2::text = 'source' THEN source_data
                                     WHEN $2::text = 'target' THEN target_data ELSE $4::jsonb END
          WHERE log_id = $1::bigint`,
        [opts.logId, resolution, opts.resolvedBy, written === null ? null : JSON.stringify(written)],
      );
      return { logId: opts.logId, resolution };
    },
    opts.scope,
  );
}
