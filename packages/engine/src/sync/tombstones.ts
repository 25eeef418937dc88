import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { qualified, quoteIdent } from '@owui-sync/schema';
import { withTransaction } from '../db.ts';
import { NotFoundError } from '../errors.ts';
import { saveProgress } from './progress.ts';
import type { RunContext } from './run-context.ts';
import { keyExpression, type TablePlan } from './table-plan.ts';
import { readTargetSchema } from './target-schema.ts';
import { tenantSchemaName } from './tenant-ddl.ts';
import { CopyEncoder, copyHeader, copyTrailer } from './value-codec.ts';

/**
 * Deletions in SQLite leave no trace, and the service role may not DELETE, so deleted rows are found by comparing
 * key sets (every key in the snapshot, streamed into a temporary table, against the keys the bookkeeping knows) and
 * marked deleted in sync_state.row_state with the time. Nothing is removed from the tenant schema; an admin may
 * purge tombstoned rows (purgeTombstones).
 */
export async function detectDeletes(
  ctx: RunContext,
  plan: TablePlan,
  opts: { failures: number; removed?: readonly string[] | null },
): Promise<number> {
  const { client } = ctx;
  if (opts.failures === 0) {
    // Every source key is tracked (nothing failed), so equal counts mean no tracked key is missing from the source.
    const sourceCount = Number(ctx.snapshot.db.prepare(plan.sqlite.count).pluck().get());
    // With the key hashes of rows that left the changed pages, the same pass finds their bookkeeping rows.
    const removed = opts.removed && opts.removed.length > 0 ? [...new Set(opts.removed)] : null;
    const live = await client.query<{ n: string; found: string[] | null }>(
      `SELECT count(*) AS n, ${
        removed ? 'array_agg(row_key) FILTER (WHERE substr(md5(row_key), 1, 16) = ANY($3::text[]))' : 'NULL'
      } AS found
         FROM sync_state.row_state
        WHERE deployment_id = $1::uuid AND table_name = $2::text AND deleted_at IS NULL`,
      removed ? [ctx.deploymentId, plan.name, removed] : [ctx.deploymentId, plan.name],
    );
    const missing = Number(live.rows[0]?.n ?? -1) - sourceCount;
    if (missing === 0) {
      await saveProgress(client, ctx.deploymentId, plan.name, ctx.jobId, { deletesChecked: true });
      return 0;
    }
    if (missing > 0 && removed && removed.length >= missing) {
      const n = await tombstoneRemoved(ctx, plan, live.rows[0]?.found ?? [], missing);
      if (n !== null) return n;
    }
  }
  ctx.stats.keySetComparisons = (ctx.stats.keySetComparisons ?? 0) + 1;
  const keyKinds = plan.keyIndexes.map((i) => plan.kinds[i] ?? 'text');
  const stmt = ctx.snapshot.db.prepare(plan.sqlite.keys).raw(true).safeIntegers(true);
  async function* payload(): AsyncGenerator<Buffer> {
    yield copyHeader();
    const enc = new CopyEncoder(plan.key, keyKinds);
    for (const values of stmt.iterate() as Iterable<unknown[]>) {
      try {
        enc.encode(values);
      } catch {
        continue; // a key that cannot be represented was never written either
      }
      if (enc.size >= 1 << 20) {
        ctx.snapshot.checkHold();
        yield enc.take();
      }
    }
    if (enc.size > 0) yield enc.take();
    yield copyTrailer();
  }
  await client.query('BEGIN');
  try {
    await client.query(plan.sql.keysDdl);
    await pipeline(Readable.from(payload()), client.query(copyStreams.from(plan.sql.copyKeys)));
    await client.query('ANALYZE pg_temp.owui_keys');
    // Freshly written bookkeeping may have no statistics yet; a nested loop over 10^5 x 10^5 keys would take
    // minutes, a hash anti-join takes milliseconds.
    await client.query("SELECT set_config('enable_nestloop', 'off', true)");
    const res = await client.query(plan.sql.tombstone, [ctx.deploymentId, plan.name, ctx.jobId]);
    await saveProgress(client, ctx.deploymentId, plan.name, ctx.jobId, { deletesChecked: true });
    await client.query('COMMIT');
    const n = res.rowCount ?? 0;
    ctx.stats.rowsDeleted += n;
    return n;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The bookkeeping rows whose key hashes are those of rows change capture saw leave the table's pages, checked absent
 * in the snapshot: when they are exactly as many as the counts say are missing, they are the deleted rows (no key set
 * is compared). Returns null when they are not, and the caller compares key sets.
 */
async function tombstoneRemoved(
  ctx: RunContext,
  plan: TablePlan,
  found: readonly string[],
  missing: number,
): Promise<number | null> {
  const { client } = ctx;
  const exists = ctx.snapshot.db.prepare(plan.sqlite.keyExists).pluck();
  const kinds = plan.keyIndexes.map((i) => plan.kinds[i] ?? 'text');
  // A key is gone only if no storage form of it is in the snapshot (a column without affinity may hold 5 or '5').
  const gone = found.filter((key) => {
    const parts = plan.key.length === 1 ? [key] : key.split('\u001f');
    const asText = parts.map((v, i) => (/^int/.test(kinds[i] ?? '') && /^-?\d+$/.test(v) ? BigInt(v) : v));
    const asNumber = parts.map((v) => (/^-?\d+$/.test(v) ? BigInt(v) : v));
    return exists.get(...asText) === undefined && exists.get(...asNumber) === undefined;
  });
  if (gone.length !== missing) return null;
  await client.query('BEGIN');
  try {
    const res = await client.query(plan.sql.tombstoneKeys, [ctx.deploymentId, plan.name, ctx.jobId, gone]);
    await saveProgress(client, ctx.deploymentId, plan.name, ctx.jobId, { deletesChecked: true });
    await client.query('COMMIT');
    const n = res.rowCount ?? 0;
    ctx.stats.rowsDeleted += n;
    return n;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Admin only: physically removes the tenant's tombstoned rows (older than `olderThanSeconds`, default all) from its
 * schema and forgets them in the bookkeeping. Returns rows removed per table.
 */
export async function purgeTombstones(opts: {
  adminPool: pg.Pool;
  clientName: string;
  olderThanSeconds?: number;
}): Promise<{ removed: Record<string, number> }> {
  const schemaName = tenantSchemaName(opts.clientName);
  return withTransaction(opts.adminPool, async (client) => {
    const dep = await client.query<{ deployment_id: string }>(
      'SELECT deployment_id FROM sync_metadata.client_deployments WHERE client_name = $1::text',
      [opts.clientName],
    );
    const deploymentId = dep.rows[0]?.deployment_id;
    if (!deploymentId) throw new NotFoundError(`tenant "${opts.clientName}" is not registered`);
    const target = await readTargetSchema(client, schemaName);
    const tables = await client.query<{ table_name: string }>(
      `SELECT DISTINCT table_name FROM sync_state.row_state WHERE deployment_id = $1::uuid AND deleted_at IS NOT NULL`,
      [deploymentId],
    );
    const removed: Record<string, number> = {};
    const age = opts.olderThanSeconds ?? 0;
    for (const { table_name } of tables.rows) {
      const t = target.tables.get(table_name);
      if (t && t.key.length > 0) {
        const res = await client.query(
          `DELETE FROM ${qualified(schemaName, table_name)} t USING sync_state.row_state r
            WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text AND r.deleted_at IS NOT NULL
              AND r.deleted_at <= now() - make_interval(secs => $3::double precision)
              AND r.row_key = ${keyExpression('t', t.key)}`,
          [deploymentId, table_name, age],
        );
        removed[table_name] = res.rowCount ?? 0;
      }
      await client.query(
        `DELETE FROM sync_state.row_state WHERE deployment_id = $1::uuid AND table_name = $2::text
            AND deleted_at IS NOT NULL AND deleted_at <= now() - make_interval(secs => $3::double precision)`,
        [deploymentId, table_name, age],
      );
    }
    return { removed };
  });
}

/** SQL condition (for `alias`) that excludes tombstoned rows of `table` — restore and views use it. */
export function notTombstonedSql(
  alias: string,
  key: readonly string[],
  deploymentParam: string,
  table: string,
): string {
  return `NOT EXISTS (SELECT 1 FROM sync_state.row_state r WHERE r.deployment_id = ${deploymentParam}
            AND r.table_name = '${table.replaceAll("'", "''")}' AND r.deleted_at IS NOT NULL
            AND r.row_key = ${keyExpression(alias, key)})`;
}

export { quoteIdent };
