import type pg from 'pg';
import type { Queryable } from '../db.ts';
import type { SqliteSchema } from './sqlite-reader.ts';

/** A tenant table as it exists in PostgreSQL (read through pg_catalog, so the service role can read it too). */
export type TargetColumn = {
  readonly name: string;
  /** format_type() text, e.g. `bigint`, `character varying(255)`, `json`. */
  readonly type: string;
  readonly notNull: boolean;
  readonly serialSequence: string | null;
};

export type TargetTable = {
  readonly name: string;
  readonly columns: readonly TargetColumn[];
  /** Primary key, else a full (non-partial, column-only) unique index; empty when the table has neither. */
  readonly key: readonly string[];
  readonly parents: readonly string[];
};

export type TargetSchema = { readonly schemaName: string; readonly tables: ReadonlyMap<string, TargetTable> };

export async function schemaExists(client: Queryable, schemaName: string): Promise<boolean> {
  const res = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1::text', [schemaName]);
  return (res.rowCount ?? 0) > 0;
}

export async function readTargetSchema(client: Queryable, schemaName: string): Promise<TargetSchema> {
  const cols = await client.query<{
    table_name: string;
    column_name: string;
    type: string;
    not_null: boolean;
    seq: string | null;
  }>(
    `SELECT c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS not_null,
            pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS seq
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE n.nspname = $1::text AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
    [schemaName],
  );
  const keys = await client.query<{ table_name: string; primary: boolean; cols: string[] }>(
    `SELECT c.relname AS table_name, i.indisprimary AS primary,
            array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS cols
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1::text AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      ORDER BY c.relname, i.indisprimary DESC, i.indnatts, i.indexrelid`,
    [schemaName],
  );
  const fks = await client.query<{ child: string; parent: string }>(
    `SELECT c.relname AS child, p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class p ON p.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = k.connamespace
      WHERE n.nspname = $1::text AND k.contype = 'f'`,
    [schemaName],
  );
  const tables = new Map<string, { name: string; columns: TargetColumn[]; key: string[]; parents: string[] }>();
  for (const r of cols.rows) {
    const t = tables.get(r.table_name) ?? { name: r.table_name, columns: [], key: [], parents: [] };
    t.columns.push({ name: r.column_name, type: r.type, notNull: r.not_null, serialSequence: r.seq });
    tables.set(r.table_name, t);
  }
  for (const r of keys.rows) {
    const t = tables.get(r.table_name);
    if (!t || t.key.length > 0) continue;
    // Prefer the primary key, then a unique index on `id`, then the first unique index.
    if (r.primary || (r.cols.length === 1 && r.cols[0] === 'id')) t.key = r.cols;
  }
  for (const r of keys.rows) {
    const t = tables.get(r.table_name);
    if (t && t.key.length === 0) t.key = r.cols;
  }
  for (const r of fks.rows) {
    const t = tables.get(r.child);
    if (t && r.parent !== r.child && !t.parents.includes(r.parent)) t.parents.push(r.parent);
  }
  return { schemaName, tables };
}

/** Orders table names so that parents come before children (cycles are broken alphabetically). */
export function parentsFirst(names: readonly string[], parentsOf: (name: string) => readonly string[]): string[] {
  const pending = new Set([...names].sort());
  const done: string[] = [];
  const doneSet = new Set<string>();
  while (pending.size > 0) {
    let progressed = false;
    for (const name of pending) {
      const parents = parentsOf(name).filter((p) => p !== name && pending.has(p));
      if (parents.length === 0) {
        pending.delete(name);
        done.push(name);
        doneSet.add(name);
        progressed = true;
      }
    }
    if (!progressed) {
      const first = [...pending][0] as string;
      pending.delete(first);
      done.push(first);
      doneSet.add(first);
    }
  }
  return done;
}

export type Drift = { readonly newTables: string[]; readonly newColumns: { table: string; column: string }[] };

/** Tables and columns present in the SQLite file but missing from the tenant schema. */
export function findDrift(source: SqliteSchema, target: TargetSchema): Drift {
  const newTables: string[] = [];
  const newColumns: { table: string; column: string }[] = [];
  for (const t of source.tables) {
    const tt = target.tables.get(t.name);
    if (!tt) {
      newTables.push(t.name);
      continue;
    }
    const have = new Set(tt.columns.map((c) => c.name));
    for (const c of t.columns) if (!have.has(c.name)) newColumns.push({ table: t.name, column: c.name });
  }
  return { newTables, newColumns };
}

export function describeDrift(drift: Drift): string {
  const parts: string[] = [];
  if (drift.newTables.length) parts.push(`new tables: ${drift.newTables.join(', ')}`);
  if (drift.newColumns.length) {
    parts.push(`new columns: ${drift.newColumns.map((c) => `${c.table}.${c.column}`).join(', ')}`);
  }
  return parts.join('; ');
}

export type { pg };
