import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { qualified, quoteIdent, quoteLiteral } from '@owui-sync/schema';
import { InvalidInputError } from '../errors.ts';
import { resolvePointInTime, rowsAtSql, type PointInTime } from './history.ts';
import { keyExpression } from '../sync/table-plan.ts';
import { readTargetSchema, type TargetTable } from '../sync/target-schema.ts';
import { binaryCopyTuples } from './copy-out.ts';
import { findDeployment, type TenantSource } from './source-schema.ts';
import { decodeField, restoreKindFor, selectExpression, type RestoreKind, type SqliteValue } from './values.ts';

/**
 * The one place selective recovery reads tenant rows from the backup: live and tombstoned rows alike, each with
 * the time it was deleted in the source (null while it is live), in the SQLite storage form a restore writes.
 * With a time (`at`), the rows are those of the last run that completed at or before it, rebuilt from the row
 * history (history.ts), each with the time it was deleted since, if it was; now (within a second) reads the current
 * backup. So every caller (CLI, API) gets the same answer.
 */

/** A time this close to now means the current backup (`--at now`); a later one is refused unless within a minute. */
const NOW_MS = 1000;
const FUTURE_TOLERANCE_MS = 60_000;

/** What recovery reads from: the tenant's registration and its backup tables (one snapshot's view of them). */
export type RecoverSource = {
  readonly dep: TenantSource;
  readonly tables: ReadonlyMap<string, TargetTable>;
};

/** One condition: `column` equals one of `values` (case-insensitively when asked, for e-mail addresses). */
export type RowCondition = { readonly column: string; readonly values: readonly string[]; readonly caseless?: boolean };

/** Rows matching any of the conditions, or every row of the table. */
export type RowFilter = { readonly anyOf: readonly RowCondition[] } | 'all';

export type TenantRow = { readonly values: SqliteValue[]; readonly deletedAt: Date | null };

export type TenantRows = {
  readonly table: string;
  readonly columns: readonly string[];
  readonly kinds: readonly RestoreKind[];
  readonly rows: TenantRow[];
};

/** Loads the tenant's registration and backup tables; run inside the caller's read-only snapshot. */
export async function openRecoverSource(client: pg.ClientBase, clientName: string): Promise<RecoverSource> {
  const dep = await findDeployment(client, clientName);
  const target = await readTargetSchema(client, dep.schemaName);
  return { dep, tables: target.tables };
}

/**
 * Rows of one backup table matching `filter`, live and tombstoned (see TenantRow.deletedAt). `columns` limits and
 * orders the columns read (default: all of the backup table's). An unknown table or column gives no rows / is
 * left out rather than failing, since older Open WebUI schemas lack many of them. `at`: the time to read the
 * tenant as of; only the current backup is available (see POINT_IN_TIME_UNAVAILABLE).
 */
export async function selectTenantRows(
  client: pg.ClientBase,
  source: RecoverSource,
  table: string,
  filter: RowFilter,
  opts: { at?: Date | null; columns?: readonly string[] } = {},
): Promise<TenantRows> {
  const pit = await pointInTime(client, source, opts.at ?? null);
  const t = source.tables.get(table);
  const wanted = opts.columns ? [...opts.columns] : (t?.columns.map((c) => c.name) ?? []);
  const cols = t ? wanted.filter((name) => t.columns.some((c) => c.name === name)) : [];
  const kinds = cols.map((name) => restoreKindFor(t?.columns.find((c) => c.name === name)?.type ?? 'text'));
  const empty: TenantRows = { table, columns: cols, kinds, rows: [] };
  if (!t || cols.length === 0) return empty;
  let where = 'true';
  if (filter !== 'all') {
    const parts: string[] = [];
    for (const cond of filter.anyOf) {
      if (cond.values.length === 0 || !t.columns.some((c) => c.name === cond.column)) continue;
      const col = `t.${quoteIdent(cond.column)}`;
      const list = cond.values.map((v) => (cond.caseless ? `lower(${quoteLiteral(v)})` : quoteLiteral(v))).join(', ');
      parts.push(cond.caseless ? `lower(${col}::text) IN (${list})` : `${col} IN (${list})`);
    }
    if (parts.length === 0) return empty;
    where = parts.map((p) => `(${p})`).join(' OR ');
  }
  const exprs = cols.map((c, i) => selectExpression('t', c, kinds[i] as RestoreKind));
  const deleted =
    t.key.length > 0
      ? `(SELECT extract(epoch FROM r.deleted_at)::float8 * 1000 FROM sync_state.row_state r
           WHERE r.deployment_id = ${quoteLiteral(source.dep.deploymentId)}::uuid
             AND r.table_name = ${quoteLiteral(table)} AND r.deleted_at IS NOT NULL
             AND r.row_key = ${keyExpression('t', t.key)})`
      : 'NULL::float8';
  // At a past time: the table's rows then (every column, so filters on any of them work), else the backup table.
  const from =
    pit && t.key.length > 0 ? `(${rowsAtSql(pit, t)})` : pit ? null : qualified(source.dep.schemaName, table);
  if (from === null) {
    throw new InvalidInputError(`table ${table} has no row key, so it cannot be read as of ${opts.at?.toISOString()}`);
  }
  const sql = `COPY (SELECT ${exprs.join(', ')}, ${deleted} FROM ${from} t
     WHERE ${where}) TO STDOUT (FORMAT binary)`;
  const rows: TenantRow[] = [];
  const stream = client.query(copyStreams.to(sql));
  try {
    for await (const fields of binaryCopyTuples(stream)) {
      const values = kinds.map((k, i) => decodeField(k, fields[i] ?? null));
      const ms = fields[kinds.length];
      rows.push({ values, deletedAt: ms ? new Date(ms.readDoubleBE(0)) : null });
    }
  } catch (error) {
    stream.destroy();
    throw error;
  }
  return { table, columns: cols, kinds, rows };
}

/** The value of `column` in a row read by selectTenantRows (undefined when the table has no such column). */
export function rowValue(rows: TenantRows, row: TenantRow, column: string): SqliteValue | undefined {
  const i = rows.columns.indexOf(column);
  return i < 0 ? undefined : row.values[i];
}

/**
 * Whether `at` means the current backup: no time, now (within a second), or a time less than a minute ahead (clocks
 * differ). A time further ahead is refused; an earlier one is read from the row history.
 */
export function isCurrentBackup(at: Date | null, now: Date = new Date()): boolean {
  if (at === null) return true;
  const diff = at.getTime() - now.getTime();
  if (diff > FUTURE_TOLERANCE_MS) {
    throw new InvalidInputError(`the time ${at.toISOString()} is in the future; give a past time or leave out --at`);
  }
  return diff >= -NOW_MS;
}

/** The runs a source was read at, per time asked for (one look-up per recovery, whatever it reads). */
const pointsInTime = new WeakMap<RecoverSource, Map<number, PointInTime>>();

/** The run to read `at` from (null: the current backup); fails naming the oldest restorable time when none is kept. */
async function pointInTime(client: pg.ClientBase, source: RecoverSource, at: Date | null): Promise<PointInTime | null> {
  if (at === null || isCurrentBackup(at)) return null;
  let cache = pointsInTime.get(source);
  if (!cache) pointsInTime.set(source, (cache = new Map()));
  let pit = cache.get(at.getTime());
  if (!pit) {
    pit = await resolvePointInTime(client, source.dep.clientName, at);
    cache.set(at.getTime(), pit);
  }
  return pit;
}
