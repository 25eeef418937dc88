import type pg from 'pg';
import { qualified, quoteIdent, quoteLiteral } from '@owui-sync/schema';
import { applyScope, type DbScope, type Queryable } from '../db.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import { historyColumnSql, keyFromTextSql } from '../sync/row-history.ts';
import { keyExpression } from '../sync/table-plan.ts';
import { readTargetSchema, type TargetTable } from '../sync/target-schema.ts';
import type { SourceObject } from './source-schema.ts';

/**
 * Reading a tenant's backup as of a time: the rows exactly as the last run that completed at or before that time
 * saw them, rebuilt from the backup tables and the row history (migration 000013). Independent of the CLI:
 *
 *   parseRestoreTime(text, now?)                     '2026-05-01T13:55:00Z', '-2h', '-30m', '-7d', 'now' → Date
 *   resolvePointInTime(client, clientName, at)       → PointInTime: the run a restore at `at` returns to; throws
 *                                                      (naming the oldest restorable time) when none is kept
 *   rowsAtSql(pit, table, columns?)                  → a SELECT of one table's rows at that point (no parameters,
 *                                                      so it can go inside COPY); columns in their backup types
 *   readRowsAt(pool, { clientName, table, at, … })   → those rows, for small reads (one user's chats, say)
 *   historyWindow(client, clientName)                → the oldest and latest restorable times, the retention
 *
 * Call resolvePointInTime and run the SELECTs in one REPEATABLE READ transaction so they see one state of the
 * backup. A row's state at the run's end C comes from its history entries replaced after C, oldest first: when there
 * is none, the row as the backup table holds it now (none if tombstoned); when the first is "no row" (data NULL), no
 * row; otherwise each column's value is the one in the earliest entry holding that column (an update keeps the old
 * values of the columns it changed, a delete the whole row), else the backup table's current value.
 */

export type PointInTime = {
  readonly clientName: string;
  readonly deploymentId: string;
  readonly schemaName: string;
  /** The time asked for. */
  readonly requested: Date;
  /** When the run returned to finished (its state is what is read). */
  readonly runFinishedAt: Date;
  readonly jobId: string;
  /** Open WebUI schema revision the source was at in that run ('alembic:…', 'peewee:…'), if known. */
  readonly revision: string | null;
  /** runFinishedAt with microseconds, as PostgreSQL text (what the SQL compares with). */
  readonly cutText: string;
};

export type HistoryWindow = {
  /** The oldest time a restore can return to (null: no run with history yet). */
  readonly oldest: Date | null;
  readonly latest: Date | null;
  readonly retentionDays: number;
  /** Open WebUI revision of the latest run. */
  readonly latestRevision: string | null;
};

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/**
 * Parses a restore time: an ISO 8601 timestamp (a date alone is midnight UTC; without an offset, UTC), `now`, or a
 * time relative to now such as `-2h`, `-30m`, `-7d`, `-90s`, `-1w`, `-1d12h`.
 */
export function parseRestoreTime(text: string, now: Date = new Date()): Date {
  const s = text.trim();
  const hint = 'use an ISO time such as 2026-05-01T13:55:00Z, or a relative one such as -2h, -30m, -7d';
  if (s === '') throw new InvalidInputError(`--at needs a time; ${hint}`);
  if (s.toLowerCase() === 'now') return now;
  if (s.startsWith('-') || s.startsWith('+')) {
    const body = s.slice(1);
    const parts = [...body.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join('') !== body) {
      throw new InvalidInputError(`"${text}" is not a relative time (units s, m, h, d, w); ${hint}`);
    }
    if (s.startsWith('+'))
      throw new InvalidInputError(`"${text}" is in the future; a restore goes back in time: ${hint}`);
    const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] ?? 0), 0);
    return new Date(now.getTime() - seconds * 1000);
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.exec(s);
  if (!m) throw new InvalidInputError(`"${text}" is not a time; ${hint}`);
  const iso = m[4]
    ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}${(m[7] ?? '').slice(0, 4)}${m[8] ?? 'Z'}`
    : `${m[1]}-${m[2]}-${m[3]}T00:00:00Z`;
  const d = new Date(iso);
  const [month, day, hour, minute, second] = [m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (
    Number.isNaN(d.getTime()) ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > 31 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new InvalidInputError(`"${text}" is not a valid time; ${hint}`);
  }
  if (d.getTime() > now.getTime() + 1000) {
    throw new InvalidInputError(`${d.toISOString()} is in the future; a restore goes back in time (${hint})`);
  }
  return d;
}

type DeploymentRow = {
  deployment_id: string;
  schema_name: string;
  retention: number;
  floor: string;
};

async function deploymentFor(client: Queryable, clientName: string): Promise<DeploymentRow> {
  const res = await client.query<DeploymentRow>(
    `SELECT deployment_id, schema_name, history_retention_days AS retention,
            to_json(greatest(coalesce(history_pruned_before, '-infinity'),
                             now() - make_interval(days => history_retention_days))) #>> '{}' AS floor
       FROM sync_metadata.client_deployments WHERE client_name = $1::text`,
    [clientName],
  );
  const row = res.rows[0];
  if (!row) {
    throw new NotFoundError(
      `tenant "${clientName}" is not registered (or not visible in this cluster); list tenants with: syncctl clients`,
    );
  }
  return row;
}

/** The range of times the tenant can be restored to. */
export async function historyWindow(client: Queryable, clientName: string): Promise<HistoryWindow> {
  const dep = await deploymentFor(client, clientName);
  const res = await client.query<{ oldest: Date | null; latest: Date | null; revision: string | null }>(
    `SELECT (SELECT min(finished_at) FROM sync_state.history_runs
              WHERE deployment_id = $1::uuid AND finished_at >= $2::timestamptz) AS oldest,
            l.finished_at AS latest, l.openwebui_revision AS revision
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT finished_at, openwebui_revision FROM sync_state.history_runs
                           WHERE deployment_id = $1::uuid ORDER BY finished_at DESC LIMIT 1) l ON true`,
    [dep.deployment_id, dep.floor],
  );
  const r = res.rows[0];
  return {
    oldest: r?.oldest ?? null,
    latest: r?.latest ?? null,
    retentionDays: dep.retention,
    latestRevision: r?.revision ?? null,
  };
}

/**
 * The run a restore at `at` returns to: the last run that completed (without failing) at or before `at`, within the
 * tenant's retention. Throws a ConflictError naming the oldest restorable time when there is none.
 */
export async function resolvePointInTime(client: Queryable, clientName: string, at: Date): Promise<PointInTime> {
  const dep = await deploymentFor(client, clientName);
  const res = await client.query<{ finished_at: Date; cut: string; job_id: string; revision: string | null }>(
    `SELECT finished_at, to_json(finished_at) #>> '{}' AS cut, job_id, openwebui_revision AS revision
       FROM sync_state.history_runs
      WHERE deployment_id = $1::uuid AND finished_at >= $3::timestamptz
        -- Times are shown to the millisecond: the time an error names as the oldest must work as it is shown.
        AND date_trunc('milliseconds', finished_at) <= $2::timestamptz
      ORDER BY finished_at DESC LIMIT 1`,
    [dep.deployment_id, at.toISOString(), dep.floor],
  );
  const run = res.rows[0];
  if (!run) {
    const window = await historyWindow(client, clientName);
    if (!window.oldest) {
      throw new ConflictError(
        `tenant "${clientName}" has no completed run with history yet, so it cannot be restored to a point in time; ` +
          `history starts with the next successful run (syncctl client sync ${clientName})`,
      );
    }
    throw new ConflictError(
      `tenant "${clientName}" cannot be restored to ${at.toISOString()}: the oldest restorable time is ` +
        `${window.oldest.toISOString()} (history is kept ${window.retentionDays} day(s); ` +
        `change it with: syncctl client retention ${clientName} DAYS)`,
      { oldest: window.oldest.toISOString(), retentionDays: window.retentionDays },
    );
  }
  return {
    clientName,
    deploymentId: dep.deployment_id,
    schemaName: dep.schema_name,
    requested: at,
    runFinishedAt: run.finished_at,
    jobId: run.job_id,
    revision: run.revision,
    cutText: run.cut,
  };
}

/**
 * SELECT of `table`'s rows as the point-in-time run saw them, columns `columns` (default: all of the backup table's)
 * in their backup types, named as the columns. Literals only (no parameters), so it can be wrapped in COPY.
 */
export function rowsAtSql(pit: PointInTime, table: TargetTable, columns?: readonly string[]): string {
  if (table.key.length === 0) {
    throw new InvalidInputError(`table ${table.name} has no row key, so its history cannot be read`);
  }
  const cols = (columns ?? table.columns.map((c) => c.name)).map((name) => {
    const c = table.columns.find((x) => x.name === name);
    if (!c) throw new InvalidInputError(`table ${table.name} has no column ${name}`);
    return c;
  });
  const dep = `${quoteLiteral(pit.deploymentId)}::uuid`;
  const tbl = quoteLiteral(table.name);
  const cut = `${quoteLiteral(pit.cutText)}::timestamptz`;
  const later = `h.deployment_id = ${dep} AND h.table_name = ${tbl} AND h.replaced_at > ${cut}`;
  const current = cols.map((c) => `t.${quoteIdent(c.name)}`).join(', ');
  const fromHistory = cols
    .map(
      (c) =>
        `CASE WHEN m.data ? '${c.name.replaceAll("'", "''")}' THEN ${historyColumnSql('m.data', c.name, c.type)} ` +
        `ELSE t.${quoteIdent(c.name)} END AS ${quoteIdent(c.name)}`,
    )
    .join(', ');
  const keyTypes = table.key.map((k) => table.columns.find((c) => c.name === k)?.type ?? 'text');
  const target = qualified(pit.schemaName, table.name);
  return `SELECT ${current} FROM ${target} t
     WHERE NOT EXISTS (SELECT 1 FROM sync_state.row_state r WHERE r.deployment_id = ${dep} AND r.table_name = ${tbl}
                          AND r.deleted_at IS NOT NULL AND r.row_key = ${keyExpression('t', table.key)})
       AND NOT EXISTS (SELECT 1 FROM sync_state.row_history h WHERE ${later}
                          AND h.row_key = ${keyExpression('t', table.key)})
    UNION ALL
    SELECT ${fromHistory} FROM (
      SELECT f.row_key, coalesce(v.data, '{}'::jsonb) AS data FROM (
        SELECT DISTINCT ON (h.row_key) h.row_key, h.data IS NULL AS absent FROM sync_state.row_history h
         WHERE ${later} ORDER BY h.row_key, h.replaced_at, h.history_id) f
      LEFT JOIN (
        SELECT x.row_key, jsonb_object_agg(x.key, x.value) AS data FROM (
          SELECT DISTINCT ON (h.row_key, kv.key) h.row_key, kv.key, kv.value
            FROM sync_state.row_history h CROSS JOIN LATERAL jsonb_each(h.data) kv
           WHERE ${later} ORDER BY h.row_key, kv.key, h.replaced_at, h.history_id) x
         GROUP BY x.row_key) v ON v.row_key = f.row_key
      WHERE NOT f.absent) m
    LEFT JOIN ${target} t ON ${keyFromTextSql('t', table.key, keyTypes, 'm.row_key')}`;
}

/** The source's DDL as recorded at or before the point in time (the earliest version when none is that old). */
export async function schemaAt(
  client: Queryable,
  pit: PointInTime,
): Promise<{ objects: SourceObject[]; origin: string; openwebuiVersion: string | null } | null> {
  const query = (where: string, order: string) =>
    client.query<{ objects: SourceObject[]; origin: string; openwebui_version: string | null }>(
      `SELECT objects, origin, openwebui_version FROM sync_state.source_schema_versions
        WHERE deployment_id = $1::uuid AND ${where} ORDER BY ${order} LIMIT 1`,
      [pit.deploymentId, pit.cutText],
    );
  const before = await query('captured_at <= $2::timestamptz', 'captured_at DESC, version_id DESC');
  const r = before.rows[0] ?? (await query('$2::text IS NOT NULL', 'captured_at, version_id')).rows[0];
  return r ? { objects: r.objects, origin: r.origin, openwebuiVersion: r.openwebui_version } : null;
}

/**
 * One table's rows as of `at` (see rowsAtSql), as pg returns them; `where` is an optional SQL condition on the
 * row's columns (alias `t`, e.g. `t."user_id" = $1`) with its parameters. For small reads: the rows are held in
 * memory. Runs in its own REPEATABLE READ, read-only transaction.
 */
export async function readRowsAt<R extends pg.QueryResultRow = Record<string, unknown>>(
  pool: pg.Pool,
  opts: {
    clientName: string;
    table: string;
    at: Date;
    scope?: DbScope;
    columns?: readonly string[];
    where?: { sql: string; params: unknown[] };
  },
): Promise<{ pointInTime: PointInTime; rows: R[] }> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await applyScope(client, opts.scope ?? {});
    const pit = await resolvePointInTime(client, opts.clientName, opts.at);
    const target = await readTargetSchema(client, pit.schemaName);
    const table = target.tables.get(opts.table);
    if (!table) throw new NotFoundError(`tenant "${opts.clientName}" has no backup table ${opts.table}`);
    const sql = `SELECT * FROM (${rowsAtSql(pit, table, opts.columns)}) t${opts.where ? ` WHERE ${opts.where.sql}` : ''}`;
    const res = await client.query<R>(sql, opts.where?.params ?? []);
    await client.query('COMMIT');
    return { pointInTime: pit, rows: res.rows };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Longest retention a tenant may ask for (ten years). */
export const MAX_RETENTION_DAYS = 3650;

/** Parses a retention in whole days (1 … MAX_RETENTION_DAYS) with a clear error. */
export function parseRetentionDays(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1 || n > MAX_RETENTION_DAYS) {
    throw new InvalidInputError(
      `retention "${text}" is not a whole number of days between 1 and ${MAX_RETENTION_DAYS} (e.g. 7, 30, 90)`,
    );
  }
  return n;
}

/**
 * Sets how many days of row history the tenant keeps (the leader's maintenance prunes older entries). A longer
 * retention keeps more from now on; what was pruned already does not come back. Service or admin connection, in a
 * transaction scoped to the tenant's cluster.
 */
export async function setHistoryRetention(
  client: Queryable,
  clientName: string,
  days: number,
): Promise<{ clientName: string; retentionDays: number; previous: number; oldest: Date | null }> {
  parseRetentionDays(String(days));
  const dep = await deploymentFor(client, clientName);
  await client.query(
    `UPDATE sync_metadata.client_deployments SET history_retention_days = $2::int, updated_at = now()
      WHERE deployment_id = $1::uuid`,
    [dep.deployment_id, days],
  );
  const window = await historyWindow(client, clientName);
  return { clientName, retentionDays: days, previous: dep.retention, oldest: window.oldest };
}
