import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { quoteIdent } from '@owui-sync/schema';
import type { Queryable } from '../db.ts';
import { detectOpenWebUIVersion, type SqliteSchema } from './sqlite-reader.ts';

/**
 * The write side of row history (migration 000013): what a run keeps of the versions it replaces or tombstones, and
 * the record of each completed run (time, job, Open WebUI revision, the source's DDL when it changed). A row's entry
 * holds the row as it was just before the run changed it; `data` NULL means the row did not exist before (an insert,
 * or a re-insert after a delete). The restore side reads it back: restore/history.ts.
 */

/** Columns of an INSERT into sync_state.row_history; values: deployment, table, key, job, data. */
export const HISTORY_INSERT =
  'INSERT INTO sync_state.row_history (deployment_id, table_name, row_key, replaced_at, job_id, data)';

/** jsonb_build_object takes at most 100 arguments: 50 columns per call, joined with ||. */
const COLUMNS_PER_OBJECT = 50;

/**
 * The row `alias` as stored history: column name → value. `json` columns are kept as their exact text (a JSON
 * string), so the text `null` stays distinct from SQL NULL and nothing is re-serialised; every other value goes
 * through to_jsonb, whose text form casts back to the column's type exactly (timestamps in ISO form whatever the
 * DateStyle, float8 in its shortest exact form, bytea as hex).
 */
export function historyDataSql(alias: string, columns: readonly string[], types: readonly string[]): string {
  const pairs = columns.map((c, i) => {
    const col = `${alias}.${quoteIdent(c)}`;
    const value = types[i] === 'json' ? `(${col})::text` : `to_jsonb(${col})`;
    return `'${c.replaceAll("'", "''")}', ${value}`;
  });
  const parts: string[] = [];
  for (let i = 0; i < pairs.length; i += COLUMNS_PER_OBJECT) {
    parts.push(`jsonb_build_object(${pairs.slice(i, i + COLUMNS_PER_OBJECT).join(', ')})`);
  }
  return parts.length === 0 ? `'{}'::jsonb` : parts.join(' || ');
}

/**
 * The old values (row `oldAlias`) of the columns that differ in the new version (row `newAlias`), as history data:
 * an update keeps only what it changed, so a `last_read_at` or a title change does not copy a whole chat body.
 * Values are compared in their text form, so nothing that is stored differently counts as equal (-0 and 0, say).
 */
export function historyChangesSql(
  oldAlias: string,
  newAlias: string,
  columns: readonly string[],
  types: readonly string[],
): string {
  if (columns.length === 0) return `'{}'::jsonb`;
  return `(${columns
    .map((c, i) => {
      const o = `${oldAlias}.${quoteIdent(c)}`;
      const n = `${newAlias}.${quoteIdent(c)}`;
      const same = ['json', 'double precision', 'real'].includes(types[i] ?? '')
        ? `(${o})::text IS NOT DISTINCT FROM (${n})::text`
        : `${o} IS NOT DISTINCT FROM ${n}`;
      return `CASE WHEN ${same} THEN '{}'::jsonb ELSE ${historyDataSql(oldAlias, [c], [types[i] ?? 'text'])} END`;
    })
    .join(' || ')})`;
}

/** A column read back from history data `h.data`, in the column's own type. */
export function historyColumnSql(dataExpr: string, column: string, type: string): string {
  return `(${dataExpr} ->> '${column.replaceAll("'", "''")}')::${type}`;
}

/**
 * Conditions matching target row `alias` to a row_key text (`keyText`), column by column in the key's own types, so
 * the key's index is used (row_key is keyExpression's text: values joined with U+001F).
 */
export function keyFromTextSql(
  alias: string,
  key: readonly string[],
  keyTypes: readonly string[],
  keyText: string,
): string {
  if (key.length === 1) return `${alias}.${quoteIdent(key[0] as string)} = (${keyText})::${keyTypes[0] ?? 'text'}`;
  return key
    .map((k, i) => `${alias}.${quoteIdent(k)} = split_part(${keyText}, chr(31), ${i + 1})::${keyTypes[i] ?? 'text'}`)
    .join(' AND ');
}

/** What a run records about its source for history: the Open WebUI revision and the DDL (sqlite_master). */
export type SourceDdl = {
  /** 'alembic:<version_num>', 'peewee:<migration>', or null. */
  readonly revision: string | null;
  /** sqlite_master rows as JSON text (the same shape as sync_state.source_schema.objects). */
  readonly objects: string;
  readonly hash: string;
};

/** sqlite_master of an open database, tables first then indexes/views/triggers (internal objects left out). */
export function readSourceObjects(
  db: Database.Database,
): { type: string; name: string; tbl_name: string; sql: string }[] {
  return db
    .prepare(
      `SELECT type, name, tbl_name, sql FROM sqlite_master
        WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, rowid`,
    )
    .all() as { type: string; name: string; tbl_name: string; sql: string }[];
}

/** The source's DDL and revision as a run's snapshot shows them (one small read of sqlite_master). */
export function sourceDdl(db: Database.Database, schema: SqliteSchema): SourceDdl {
  const objects = JSON.stringify(readSourceObjects(db));
  return {
    revision: detectOpenWebUIVersion(db, schema),
    objects,
    hash: ddlHash(objects),
  };
}

export function ddlHash(objectsJson: string): string {
  return createHash('sha256').update(objectsJson).digest('hex').slice(0, 32);
}

/**
 * Records a version of the tenant's DDL when it differs from the latest one recorded. `origin`: 'run' (a sync run's
 * snapshot) or 'capture' (registration, upgrade-schema, verify).
 */
export async function recordDdlVersion(
  client: Queryable,
  deploymentId: string,
  ddl: { objects: string; hash: string; revision: string | null },
  origin: 'run' | 'capture',
): Promise<void> {
  await client.query(
    `INSERT INTO sync_state.source_schema_versions (deployment_id, captured_at, ddl_hash, objects, openwebui_version, origin)
     SELECT $1::uuid, now(), $2::text, $3::text::jsonb, $4::text, $5::text
      WHERE $2::text IS DISTINCT FROM (
              SELECT v.ddl_hash FROM sync_state.source_schema_versions v WHERE v.deployment_id = $1::uuid
               ORDER BY v.captured_at DESC, v.version_id DESC LIMIT 1)`,
    [deploymentId, ddl.hash, ddl.objects, ddl.revision, origin],
  );
}

/**
 * Records a completed run (one a restore can go back to) with the revision its snapshot had, and its DDL when that
 * changed. Called in the transaction that records the end of the run, so the times agree with sync_jobs.
 */
export async function recordHistoryRun(
  client: Queryable,
  deploymentId: string,
  jobId: string,
  ddl: SourceDdl,
): Promise<void> {
  await client.query(
    `INSERT INTO sync_state.history_runs (deployment_id, finished_at, job_id, openwebui_revision)
     VALUES ($1::uuid, now(), $2::uuid, $3::text) ON CONFLICT DO NOTHING`,
    [deploymentId, jobId, ddl.revision],
  );
  await recordDdlVersion(client, deploymentId, ddl, 'run');
}
