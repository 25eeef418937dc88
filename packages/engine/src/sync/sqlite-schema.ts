import type Database from 'better-sqlite3';

/**
 * A SQLite database's schema as the engine reads it from sqlite_master and the table/index/foreign-key pragmas, and
 * what marks it as an Open WebUI database (and which revision wrote it).
 */

export type SqliteColumn = {
  readonly name: string;
  readonly declaredType: string;
  readonly notNull: boolean;
  readonly defaultValue: string | null;
  /** 1-based position in the primary key, 0 when not part of it. */
  readonly pk: number;
};

export type SqliteIndex = {
  readonly name: string;
  readonly unique: boolean;
  readonly origin: 'c' | 'u' | 'pk';
  readonly partial: boolean;
  /** Column names; null entries are expressions. */
  readonly columns: readonly (string | null)[];
  readonly sql: string | null;
};

export type SqliteForeignKey = {
  readonly table: string;
  readonly from: readonly string[];
  readonly to: readonly (string | null)[];
  readonly onDelete: string;
  readonly onUpdate: string;
};

export type SqliteTable = {
  readonly name: string;
  readonly columns: readonly SqliteColumn[];
  readonly indexes: readonly SqliteIndex[];
  readonly foreignKeys: readonly SqliteForeignKey[];
  readonly withoutRowid: boolean;
};

export type SqliteSchema = { readonly tables: readonly SqliteTable[] };

/** Tables whose presence marks an Open WebUI database (every era has `user` and `auth`). */
const OPENWEBUI_MARKERS = ['user', 'auth'] as const;

export function readSchema(db: Database.Database): SqliteSchema {
  const rows = db
    .prepare(
      "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .all() as { name: string; sql: string | null }[];
  const indexSql = new Map<string, string | null>(
    (
      db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index'").all() as {
        name: string;
        sql: string | null;
      }[]
    ).map((r) => [r.name, r.sql]),
  );
  const tables: SqliteTable[] = [];
  for (const { name, sql } of rows) {
    const columns = (
      db.prepare('SELECT name, type, "notnull" AS nn, dflt_value, pk FROM pragma_table_info(?)').all(name) as {
        name: string;
        type: string;
        nn: number;
        dflt_value: string | null;
        pk: number;
      }[]
    ).map((c) => ({
      name: c.name,
      declaredType: c.type ?? '',
      notNull: c.nn === 1,
      defaultValue: c.dflt_value,
      pk: c.pk,
    }));
    const indexes = (
      db.prepare('SELECT name, "unique" AS u, origin, partial FROM pragma_index_list(?)').all(name) as {
        name: string;
        u: number;
        origin: 'c' | 'u' | 'pk';
        partial: number;
      }[]
    ).map((ix) => ({
      name: ix.name,
      unique: ix.u === 1,
      origin: ix.origin,
      partial: ix.partial === 1,
      columns: (
        db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(ix.name) as { name: string | null }[]
      ).map((c) => c.name),
      sql: indexSql.get(ix.name) ?? null,
    }));
    const fkRows = db
      .prepare(
        'SELECT id, seq, "table" AS t, "from" AS f, "to" AS tt, on_update, on_delete FROM pragma_foreign_key_list(?)',
      )
      .all(name) as {
      id: number;
      seq: number;
      t: string;
      f: string;
      tt: string | null;
      on_update: string;
      on_delete: string;
    }[];
    const fks = new Map<
      number,
      { table: string; from: string[]; to: (string | null)[]; onDelete: string; onUpdate: string }
    >();
    for (const fk of fkRows) {
      const entry = fks.get(fk.id) ?? { table: fk.t, from: [], to: [], onDelete: fk.on_delete, onUpdate: fk.on_update };
      entry.from.push(fk.f);
      entry.to.push(fk.tt);
      fks.set(fk.id, entry);
    }
    tables.push({
      name,
      columns,
      indexes,
      foreignKeys: [...fks.values()],
      withoutRowid: /\bWITHOUT\s+ROWID\b/i.test(sql ?? ''),
    });
  }
  return { tables };
}

/** True when the schema looks like an Open WebUI database (any era). */
export function isOpenWebUISchema(schema: SqliteSchema): boolean {
  const names = new Set(schema.tables.map((t) => t.name));
  return OPENWEBUI_MARKERS.every((m) => names.has(m));
}

/** The Open WebUI release line a database was written by, from alembic_version/migratehistory (null if unknown). */
export function detectOpenWebUIVersion(db: Database.Database, schema: SqliteSchema): string | null {
  return openWebUIRevision(db, new Set(schema.tables.map((t) => t.name)));
}

/**
 * The Open WebUI revision recorded in an open database whose tables are `names`: `alembic:<version_num>` (0.4+),
 * else `peewee:<last migration>` (older releases); null when it has neither.
 */
export function openWebUIRevision(db: Database.Database, names: ReadonlySet<string>): string | null {
  if (names.has('alembic_version')) {
    const head = db.prepare('SELECT version_num FROM alembic_version LIMIT 1').pluck().get() as string | undefined;
    if (head) return `alembic:${head}`;
  }
  if (names.has('migratehistory')) {
    const last = db.prepare('SELECT name FROM migratehistory ORDER BY id DESC LIMIT 1').pluck().get() as
      string | undefined;
    if (last) return `peewee:${last}`;
  }
  return null;
}
