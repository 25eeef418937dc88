import type pg from 'pg';
import type Database from 'better-sqlite3';
import { quoteIdent } from '@owui-sync/schema';
import { applyScope, type Queryable } from '../db.ts';
import { NotFoundError } from '../errors.ts';
import { SqliteSnapshot, detectOpenWebUIVersion, toSourceError } from '../sync/sqlite-reader.ts';
import { ddlHash, readSourceObjects, recordDdlVersion } from '../sync/row-history.ts';

/** One sqlite_master row of the source, in creation order. */
export type SourceObject = {
  type: 'table' | 'index' | 'trigger' | 'view';
  name: string;
  tbl_name: string;
  sql: string;
};

export type SourceSchemaRecord = {
  objects: SourceObject[];
  openwebuiVersion: string | null;
  journalMode: string | null;
  capturedAt: Date;
};

/** Where a registered tenant's backup and source live, as restore reads them. */
export type TenantSource = { deploymentId: string; clientName: string; schemaName: string; sqlitePath: string };

/** The tenant's registration (honours RLS: run inside a scoped transaction for the service role). */
export async function findDeployment(client: Queryable, clientName: string): Promise<TenantSource> {
  const res = await client.query<{ deployment_id: string; schema_name: string; sqlite_path: string }>(
    `SELECT deployment_id, schema_name, sqlite_path FROM sync_metadata.client_deployments WHERE client_name = $1::text`,
    [clientName],
  );
  const row = res.rows[0];
  if (!row) {
    throw new NotFoundError(
      `tenant "${clientName}" is not registered (or not visible in this cluster); list tenants with: syncctl clients`,
    );
  }
  return {
    deploymentId: row.deployment_id,
    clientName,
    schemaName: row.schema_name,
    sqlitePath: row.sqlite_path,
  };
}

/** sqlite_master of an open database, tables first then indexes/triggers/views (internal objects left out). */
export function readSqliteMaster(db: Database.Database): SourceObject[] {
  return readSourceObjects(db) as SourceObject[];
}

/**
 * Records the source's schema (sqlite_master) for the tenant so a restore recreates the same DDL. Call it after
 * provisioning or an upgrade of the tenant schema; `syncctl verify` refreshes it too. Service or admin connection.
 */
export async function captureSourceSchema(opts: {
  pool: pg.Pool;
  clientName: string;
  sqlitePath?: string;
  scope?: { hostId?: string; cluster?: string };
}): Promise<{ objects: number }> {
  const client = await opts.pool.connect();
  try {
    await client.query('BEGIN');
    await applyScope(client, opts.scope ?? {});
    const dep = await findDeployment(client, opts.clientName);
    const path = opts.sqlitePath ?? dep.sqlitePath;
    const snap = await SqliteSnapshot.open(path);
    let objects: SourceObject[];
    let version: string | null;
    try {
      objects = readSqliteMaster(snap.db);
      version = detectOpenWebUIVersion(snap.db, snap.schema());
    } catch (error) {
      throw toSourceError(path, error);
    } finally {
      snap.close();
    }
    await client.query(
      `INSERT INTO sync_state.source_schema (deployment_id, objects, openwebui_version, journal_mode, captured_at)
       VALUES ($1::uuid, $2::jsonb, $3::text, $4::text, now())
       ON CONFLICT (deployment_id) DO UPDATE SET objects = EXCLUDED.objects,
         openwebui_version = EXCLUDED.openwebui_version, journal_mode = EXCLUDED.journal_mode, captured_at = now()`,
      [dep.deploymentId, JSON.stringify(objects), version, snap.journalMode],
    );
    // Versioned too, so a restore to a point in time uses the DDL of that time.
    const json = JSON.stringify(objects);
    await recordDdlVersion(
      client,
      dep.deploymentId,
      { objects: json, hash: ddlHash(json), revision: version },
      'capture',
    );
    await client.query('COMMIT');
    return { objects: objects.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export async function loadSourceSchema(client: Queryable, deploymentId: string): Promise<SourceSchemaRecord | null> {
  const res = await client.query<{
    objects: SourceObject[];
    openwebui_version: string | null;
    journal_mode: string | null;
    captured_at: Date;
  }>(
    `SELECT objects, openwebui_version, journal_mode, captured_at FROM sync_state.source_schema
      WHERE deployment_id = $1::uuid`,
    [deploymentId],
  );
  const r = res.rows[0];
  if (!r) return null;
  return {
    objects: r.objects,
    openwebuiVersion: r.openwebui_version,
    journalMode: r.journal_mode,
    capturedAt: r.captured_at,
  };
}

const SQLITE_TYPE: Record<string, string> = {
  bigint: 'BIGINT',
  integer: 'INTEGER',
  smallint: 'SMALLINT',
  boolean: 'BOOLEAN',
  text: 'TEXT',
  json: 'JSON',
  jsonb: 'JSON',
  'timestamp without time zone': 'DATETIME',
  'timestamp with time zone': 'DATETIME',
  date: 'DATE',
  'double precision': 'FLOAT',
  real: 'REAL',
  numeric: 'NUMERIC',
  bytea: 'BLOB',
  'character varying': 'VARCHAR',
};

export function sqliteTypeFor(pgType: string): string {
  const m = /^character varying\((\d+)\)$/.exec(pgType);
  if (m) return `VARCHAR(${m[1]})`;
  return SQLITE_TYPE[pgType] ?? 'TEXT';
}

/**
 * DDL rebuilt from the PostgreSQL catalog, for tables whose source DDL was never captured: Open WebUI's declared
 * types (BIGINT, BOOLEAN, JSON, VARCHAR(n), DATETIME, …), NOT NULL, primary key and column indexes with their names.
 */
export async function reconstructTableDdl(
  client: Queryable,
  schemaName: string,
  table: string,
): Promise<SourceObject[]> {
  const cols = await client.query<{ name: string; type: string; not_null: boolean; serial: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) IS NOT NULL AS serial
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1::text AND c.relname = $2::text AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schemaName, table],
  );
  const idx = await client.query<{ name: string; primary: boolean; unique: boolean; cols: string[] | null }>(
    `SELECT ic.relname AS name, i.indisprimary AS primary, i.indisunique AS unique,
            CASE WHEN i.indexprs IS NULL AND i.indpred IS NULL THEN
              array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] END AS cols
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1::text AND c.relname = $2::text ORDER BY i.indisprimary DESC, ic.relname`,
    [schemaName, table],
  );
  const pk = idx.rows.find((r) => r.primary)?.cols ?? [];
  const singleSerialPk = pk.length === 1 && cols.rows.some((c) => c.name === pk[0] && c.serial);
  const defs = cols.rows.map((c) => {
    if (singleSerialPk && c.name === pk[0]) return `${quoteIdent(c.name)} INTEGER NOT NULL PRIMARY KEY`;
    return `${quoteIdent(c.name)} ${sqliteTypeFor(c.type)}${c.not_null ? ' NOT NULL' : ''}`;
  });
  if (pk.length > 0 && !singleSerialPk) defs.push(`PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`);
  const objects: SourceObject[] = [
    {
      type: 'table',
      name: table,
      tbl_name: table,
      sql: `CREATE TABLE ${quoteIdent(table)} (\n\t${defs.join(',\n\t')}\n)`,
    },
  ];
  for (const r of idx.rows) {
    if (r.primary || !r.cols) continue;
    const name = r.name.startsWith(`${table}_`) && r.name.endsWith('_key') ? `ix_${r.name}` : r.name;
    objects.push({
      type: 'index',
      name,
      tbl_name: table,
      sql: `CREATE ${r.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(name)} ON ${quoteIdent(table)} (${r.cols
        .map(quoteIdent)
        .join(', ')})`,
    });
  }
  return objects;
}
