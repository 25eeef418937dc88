import type pg from 'pg';
import { qualified } from '@owui-sync/schema';
import type { SqliteSchema } from '../sync/sqlite-reader.ts';
import { buildPlan, keyExpression } from '../sync/table-plan.ts';
import type { TargetSchema } from '../sync/target-schema.ts';

/**
 * The backup checked against its own bookkeeping, in the drill's snapshot. Every sync records, per row, the hash
 * of the target row as it wrote it (sync_state.row_state.target_hash, over the columns both sides have). A drill
 * recomputes that hash for every backup row and compares, table by table, in one full join per table:
 *
 *   unbooked  a backup row with no bookkeeping (inserted outside a sync, or its bookkeeping was deleted);
 *   lost      bookkeeping of a live row whose backup row is gone (deleted outside a sync);
 *   damaged   a backup row whose content no longer hashes to what its sync wrote (edited or damaged outside a
 *             sync); rows with an unresolved conflict are left out (the conflict already reports them).
 *
 * Tombstoned rows (deleted in the source, kept in the backup) are neither lost nor damaged.
 */

export type BookkeepingTable = {
  table: string;
  rows: number;
  unbooked: number;
  lost: number;
  damaged: number;
  /** Up to 10 row keys of each kind (composite keys joined with U+001F). */
  examples: { unbooked: string[]; lost: string[]; damaged: string[] };
};

export type BookkeepingCheck = {
  ok: boolean;
  rows: number;
  unbooked: number;
  lost: number;
  damaged: number;
  /** Tables with a problem only. */
  tables: BookkeepingTable[];
  /** One line: what is wrong, where (or "ok"). */
  summary: string;
  seconds: number;
};

const EXAMPLES = 10;

/**
 * Sends the check for every table of `restored` as one query (so the database works on it while the caller does
 * other work) and resolves with the result. `target` is the tenant schema as readTargetSchema read it.
 */
export function checkBookkeeping(
  client: pg.ClientBase,
  dep: { deploymentId: string; schemaName: string },
  restored: SqliteSchema,
  target: TargetSchema,
): Promise<BookkeepingCheck> {
  const t0 = performance.now();
  const parts: string[] = [];
  for (const source of restored.tables) {
    const t = target.tables.get(source.name);
    if (!t || t.key.length === 0) continue;
    const plan = buildPlan(dep.schemaName, t, source);
    const name = `'${t.name.replaceAll("'", "''")}'::text`;
    parts.push(`(WITH b AS MATERIALIZED (
         SELECT ${keyExpression('t', t.key)} AS k, ${plan.sql.hashTarget} AS h, ${plan.sql.keyJson} AS kj
           FROM ${qualified(dep.schemaName, t.name)} t
       ), r AS (
         SELECT row_key, target_hash, deleted_at FROM sync_state.row_state
          WHERE deployment_id = $1::uuid AND table_name = ${name}
       ), j AS (
         SELECT b.k, b.kj, r.row_key,
                CASE WHEN b.k IS NOT NULL AND r.row_key IS NULL THEN 'unbooked'
                     WHEN b.k IS NULL AND r.deleted_at IS NULL THEN 'lost'
                     WHEN b.k IS NOT NULL AND r.deleted_at IS NULL AND r.target_hash IS NOT NULL
                          AND r.target_hash <> b.h THEN 'damaged' END AS problem
           FROM b FULL JOIN r ON r.row_key = b.k
       ), p AS (
         SELECT coalesce(j.k, j.row_key) AS k, j.problem FROM j
          WHERE j.problem IS NOT NULL
            AND NOT (j.problem = 'damaged' AND EXISTS (
                  SELECT 1 FROM sync_metadata.conflict_log c
                   WHERE c.deployment_id = $1::uuid AND c.table_name = ${name} AND c.resolved_at IS NULL
                     AND c.row_key = j.kj))
       )
       SELECT ${name} AS table_name, (SELECT count(*) FROM b)::int AS rows,
              count(*) FILTER (WHERE problem = 'unbooked')::int AS unbooked,
              count(*) FILTER (WHERE problem = 'lost')::int AS lost,
              count(*) FILTER (WHERE problem = 'damaged')::int AS damaged,
              (array_agg(k ORDER BY k) FILTER (WHERE problem = 'unbooked'))[1:${EXAMPLES}] AS ex_unbooked,
              (array_agg(k ORDER BY k) FILTER (WHERE problem = 'lost'))[1:${EXAMPLES}] AS ex_lost,
              (array_agg(k ORDER BY k) FILTER (WHERE problem = 'damaged'))[1:${EXAMPLES}] AS ex_damaged
         FROM p)`);
  }
  const finish = (
    rowsOut: {
      table_name: string;
      rows: number;
      unbooked: number;
      lost: number;
      damaged: number;
      ex_unbooked: string[] | null;
      ex_lost: string[] | null;
      ex_damaged: string[] | null;
    }[],
  ): BookkeepingCheck => {
    const tables: BookkeepingTable[] = [];
    let rows = 0;
    for (const r of rowsOut) {
      rows += r.rows;
      if (r.unbooked + r.lost + r.damaged === 0) continue;
      tables.push({
        table: r.table_name,
        rows: r.rows,
        unbooked: r.unbooked,
        lost: r.lost,
        damaged: r.damaged,
        examples: { unbooked: r.ex_unbooked ?? [], lost: r.ex_lost ?? [], damaged: r.ex_damaged ?? [] },
      });
    }
    const sum = (f: (x: BookkeepingTable) => number) => tables.reduce((a, x) => a + f(x), 0);
    return {
      ok: tables.length === 0,
      rows,
      unbooked: sum((x) => x.unbooked),
      lost: sum((x) => x.lost),
      damaged: sum((x) => x.damaged),
      tables,
      summary: tables.length === 0 ? 'ok' : summarise(tables),
      seconds: (performance.now() - t0) / 1000,
    };
  };
  if (parts.length === 0) return Promise.resolve(finish([]));
  return client
    .query<Parameters<typeof finish>[0][number]>(parts.join('\nUNION ALL\n'), [dep.deploymentId])
    .then((res) => finish(res.rows));
}

function summarise(tables: BookkeepingTable[]): string {
  const parts = tables.map((t) => {
    const what: string[] = [];
    const keys = (ks: string[]) =>
      ks
        .slice(0, 3)
        .map((k) => k.replaceAll('\u001f', '/'))
        .join(', ');
    if (t.damaged) what.push(`${t.damaged} row(s) changed since their sync wrote them (${keys(t.examples.damaged)})`);
    if (t.lost) what.push(`${t.lost} row(s) missing from the backup (${keys(t.examples.lost)})`);
    if (t.unbooked) what.push(`${t.unbooked} row(s) without sync bookkeeping (${keys(t.examples.unbooked)})`);
    return `${t.table}: ${what.join(', ')}`;
  });
  return (
    `the backup does not match what its syncs wrote — ${parts.join('; ')}; it was changed outside a sync ` +
    '(see docs/restore.md, "When a drill fails")'
  );
}
