import fs from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { quoteIdent } from '@owui-sync/schema';
import { loadSourceSchema, reconstructTableDdl, type SourceObject } from './source-schema.ts';
import { selectTenantRows, type RecoverSource, type RowFilter, type TenantRows } from './recover-rows.ts';
import { temporaryPath } from './recover-files.ts';

/**
 * The tables that belong to one user in an Open WebUI database, and how their rows are found: by the user's id, or
 * through the recovered chats. Everything else (other users, shared configuration, models, tools, knowledge bases,
 * channels, groups) is left out. `auth` holds the password hash and is written only when asked.
 */
export const USER_TABLES = [
  { table: 'user', by: 'id' },
  { table: 'auth', by: 'id' },
  { table: 'chat', by: 'chats' },
  { table: 'chat_message', by: 'chat_id' },
  { table: 'chat_file', by: 'chat_id' },
  { table: 'chatidtag', by: 'chat_id' },
  { table: 'tag', by: 'user_id' },
  { table: 'folder', by: 'user_id' },
  { table: 'file', by: 'user_id' },
  { table: 'memory', by: 'user_id' },
  { table: 'note', by: 'user_id' },
  { table: 'feedback', by: 'user_id' },
  { table: 'alembic_version', by: 'all' },
] as const;

export type UserSqliteResult = {
  path: string;
  /** Rows written per table (tables the tenant does not have are absent). */
  tables: Record<string, number>;
  /** Of those, rows deleted in the source (tombstoned in the backup). */
  deletedRows: Record<string, number>;
  authIncluded: boolean;
  integrityCheck: string;
  warnings: string[];
};

/**
 * Writes a SQLite file holding only one user's rows of the tables in USER_TABLES, in the tenant's own schema (the
 * captured DDL, else rebuilt from PostgreSQL) and storage forms. The chat tables hold the recovered chats only;
 * the user's other tables all their rows, live and deleted. Built under a temporary name (mode 0600), checked with
 * PRAGMA integrity_check and renamed onto `to` (checked by the caller).
 */
export async function writeUserSqlite(
  client: pg.ClientBase,
  source: RecoverSource,
  opts: {
    to: string;
    userId: string;
    chats: TenantRows;
    chatIds: readonly string[];
    includeAuth: boolean;
    at: Date | null;
  },
): Promise<UserSqliteResult> {
  const captured = (await loadSourceSchema(client, source.dep.deploymentId))?.objects ?? [];
  const tmp = temporaryPath(opts.to);
  fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
  fs.chmodSync(tmp, 0o600);
  const db = new Database(tmp);
  const tables: Record<string, number> = {};
  const deletedRows: Record<string, number> = {};
  const warnings: string[] = [];
  try {
    db.pragma('foreign_keys = OFF'); // as Open WebUI runs; parents' unique indexes come after the rows
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    const later: SourceObject[] = [];
    for (const spec of USER_TABLES) {
      if (spec.table === 'auth' && !opts.includeAuth) continue;
      if (!source.tables.has(spec.table)) continue;
      const sqliteCols = await createTable(client, db, source, captured, spec.table, later);
      const filter: RowFilter =
        spec.by === 'all'
          ? 'all'
          : spec.by === 'chats'
            ? { anyOf: [{ column: 'id', values: opts.chatIds }] }
            : spec.by === 'chat_id'
              ? { anyOf: [{ column: 'chat_id', values: opts.chatIds }] }
              : { anyOf: [{ column: spec.by, values: [opts.userId] }] };
      const rows =
        spec.by === 'chats'
          ? opts.chats
          : await selectTenantRows(client, source, spec.table, filter, { at: opts.at, columns: sqliteCols });
      const keep = spec.by === 'chats' ? new Set(opts.chatIds) : null;
      const idIndex = rows.columns.indexOf('id');
      const cols = rows.columns.filter((c) => sqliteCols.includes(c));
      const positions = cols.map((c) => rows.columns.indexOf(c));
      const insert = db.prepare(
        `INSERT INTO ${quoteIdent(spec.table)} (${cols.map(quoteIdent).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
      );
      let n = 0;
      let deleted = 0;
      db.transaction(() => {
        for (const row of rows.rows) {
          if (keep && !keep.has(String(row.values[idIndex]))) continue;
          insert.run(positions.map((p) => row.values[p] ?? null));
          n += 1;
          if (row.deletedAt) deleted += 1;
        }
      })();
      tables[spec.table] = n;
      deletedRows[spec.table] = deleted;
    }
    for (const o of later) {
      try {
        db.exec(o.sql);
      } catch (error) {
        // Deleted and live rows of one user may share a value a unique index of the source forbids twice.
        warnings.push(`index ${o.name} not created: ${(error as Error).message}`);
      }
    }
    db.pragma('journal_mode = DELETE');
    const integrity = String(db.pragma('integrity_check', { simple: true }));
    if (integrity !== 'ok') throw new Error(`recovered database failed PRAGMA integrity_check: ${integrity}`);
    db.close();
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    for (const suffix of ['-wal', '-shm', '-journal']) fs.rmSync(opts.to + suffix, { force: true });
    fs.renameSync(tmp, opts.to);
    return { path: opts.to, tables, deletedRows, authIncluded: opts.includeAuth, integrityCheck: integrity, warnings };
  } finally {
    if (db.open) db.close();
    for (const suffix of ['', '-journal', '-wal', '-shm']) fs.rmSync(tmp + suffix, { force: true });
  }
}

/**
 * Creates the table as the source declared it when its DDL was recorded, else (never recorded, or the backup has
 * gained columns since, as after an Open WebUI upgrade) rebuilt from PostgreSQL like restore does; queues its
 * indexes in `later`. Returns the columns of the created table.
 */
async function createTable(
  client: pg.ClientBase,
  db: Database.Database,
  source: RecoverSource,
  captured: readonly SourceObject[],
  table: string,
  later: SourceObject[],
): Promise<string[]> {
  const columnsOf = () =>
    (db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as { name: string }[]).map((c) => c.name);
  const own = captured.filter((o) => o.tbl_name === table && (o.type === 'table' || o.type === 'index'));
  const create = own.find((o) => o.type === 'table');
  const backupCols = source.tables.get(table)?.columns.map((c) => c.name) ?? [];
  if (create) {
    db.exec(create.sql);
    const cols = columnsOf();
    if (backupCols.every((c) => cols.includes(c))) {
      later.push(...own.filter((o) => o.type === 'index'));
      return cols;
    }
    db.exec(`DROP TABLE ${quoteIdent(table)}`);
  }
  const objects = await reconstructTableDdl(client, source.dep.schemaName, table);
  for (const o of objects.filter((x) => x.type === 'table')) db.exec(o.sql);
  later.push(...objects.filter((x) => x.type === 'index'));
  return columnsOf();
}
