// Stays whole (over 400 lines): provisioning and upgrading share the DDL builders, and a tenant schema is created in one place.
import type pg from 'pg';
import type { Logger } from 'pino';
import { assertRoleName, checkClientName, qualified, quoteIdent, schemaNameFor } from '@owui-sync/schema';
import { InvalidInputError, SourceUnusableError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import {
  SqliteSnapshot,
  detectOpenWebUIVersion,
  isOpenWebUISchema,
  toSourceError,
  type SqliteIndex,
  type SqliteSchema,
  type SqliteTable,
} from './sqlite-reader.ts';
import { buildPlan, keyExpression } from './table-plan.ts';
import { findDrift, parentsFirst, readTargetSchema, schemaExists, type TargetSchema } from './target-schema.ts';
import { mapColumnType, mapDefault, type ColumnStats, type MappedType } from './type-map.ts';
import { assertGrantableServiceRole } from '../service-login.ts';

/** Schema of the engine's per-row bookkeeping (hashes, tombstones, failed rows). */
export const SYNC_STATE_SCHEMA = 'sync_state';

export type ProvisionResult = {
  schemaName: string;
  tables: string[];
  openwebuiVersion: string | null;
  created: boolean;
  skippedExisting: boolean;
};

export type TenantDdlOptions = {
  adminPool: pg.Pool;
  clientName: string;
  sqlitePath: string;
  serviceRole: string;
  logger?: Logger;
};

/** Validates a client name and returns its schema name, or throws InvalidInputError with the reason. */
export function tenantSchemaName(clientName: string): string {
  const check = checkClientName(clientName);
  if (!check.ok) throw new InvalidInputError(check.reason);
  return schemaNameFor(clientName);
}

/**
 * Checks that a SQLite file can be opened read-only and is an Open WebUI database. Throws SourceUnusableError with
 * a message that says what is wrong (missing, not SQLite, corrupt, locked, not Open WebUI).
 */
export async function inspectSqliteSource(
  path: string,
): Promise<{ openwebuiVersion: string | null; tables: string[]; journalMode: string }> {
  const snap = await SqliteSnapshot.open(path);
  try {
    let schema: SqliteSchema;
    try {
      schema = snap.schema();
      const check = snap.db.prepare('PRAGMA quick_check(1)').pluck().get() as string;
      if (check !== 'ok') throw new SourceUnusableError(`SQLite file ${path} is corrupt (quick_check: ${check})`);
    } catch (error) {
      throw toSourceError(path, error);
    }
    assertOpenWebUI(path, schema);
    return {
      openwebuiVersion: detectOpenWebUIVersion(snap.db, schema),
      tables: schema.tables.map((t) => t.name),
      journalMode: snap.journalMode,
    };
  } finally {
    snap.close();
  }
}

export function assertOpenWebUI(path: string, schema: SqliteSchema): void {
  if (!isOpenWebUISchema(schema)) {
    const found = schema.tables.map((t) => t.name).slice(0, 10);
    throw new SourceUnusableError(
      `${path} is a SQLite database but not an Open WebUI one (no "user" and "auth" tables; found: ${
        found.length ? found.join(', ') : 'no tables'
      }); check the tenant's sqlite_path`,
    );
  }
}

/**
 * Creates the tenant schema `client_<name>` and its tables from the SQLite file's actual schema (admin
 * connection), with Open WebUI's PostgreSQL types, keys, indexes and foreign keys, and grants the service role
 * SELECT/INSERT/UPDATE (no DELETE, no DDL). Tables that already exist are left as they are; missing ones are added.
 */
export async function provisionTenant(opts: TenantDdlOptions): Promise<ProvisionResult> {
  const logger = opts.logger ?? silentLogger();
  const schemaName = tenantSchemaName(opts.clientName);
  const role = assertRoleName(opts.serviceRole);
  const { schema, stats, version } = await readSourceForDdl(opts.sqlitePath);
  const client = await opts.adminPool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`owui-sync:ddl:${schemaName}`]);
    const existed = await schemaExists(client, schemaName);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schemaName)}`);
    const target = await readTargetSchema(client, schemaName);
    const missing = schema.tables.filter((t) => !target.tables.has(t.name));
    await createTables(client, schemaName, missing, schema, stats, logger);
    await grantTenant(client, schemaName, role);
    await client.query('COMMIT');
    logger.info({ schema: schemaName, created: missing.length }, `provisioned tenant schema ${schemaName}`);
    return {
      schemaName,
      tables: schema.tables.map((t) => t.name),
      openwebuiVersion: version,
      created: !existed,
      skippedExisting: existed,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Applies schema drift found in the SQLite file (admin connection): new tables (with keys, indexes, foreign keys)
 * and new columns; a table that gained a primary key (Open WebUI 0.9.6) gets it too. Returns what changed.
 */
export async function upgradeTenantSchema(opts: TenantDdlOptions): Promise<{ changes: string[] }> {
  const logger = opts.logger ?? silentLogger();
  const schemaName = tenantSchemaName(opts.clientName);
  const role = assertRoleName(opts.serviceRole);
  const { schema, stats } = await readSourceForDdl(opts.sqlitePath);
  const client = await opts.adminPool.connect();
  const changes: string[] = [];
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`owui-sync:ddl:${schemaName}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schemaName)}`);
    const target = await readTargetSchema(client, schemaName);
    const drift = findDrift(schema, target);
    const newTables = schema.tables.filter((t) => drift.newTables.includes(t.name));
    await createTables(client, schemaName, newTables, schema, stats, logger);
    for (const t of newTables) changes.push(`created table ${t.name}`);
    for (const { table, column } of drift.newColumns) {
      const st = schema.tables.find((t) => t.name === table);
      const col = st?.columns.find((c) => c.name === column);
      if (!st || !col) continue;
      const mapped = mapColumnType(st, col, stats.get(table)?.get(column));
      const def = mapDefault(col.defaultValue, mapped.sql);
      const notNull = col.notNull && def !== null ? ' NOT NULL' : '';
      await client.query(
        `ALTER TABLE ${qualified(schemaName, table)} ADD COLUMN ${quoteIdent(column)} ${mapped.sql}${
          def !== null ? ` DEFAULT ${def}` : ''
        }${notNull}`,
      );
      changes.push(`added column ${table}.${column} (${mapped.sql})`);
    }
    changes.push(...(await addMissingPrimaryKeys(client, schemaName, schema, target)));
    // Rows already copied have nothing in the new columns, and SQLite's ALTER TABLE rewrote none of their pages:
    // forget the recorded page state so the next run compares every table in full and the values arrive.
    await rebaseTargetHashes(client, opts.clientName, schemaName, schema, drift.newColumns);
    if (changes.length > 0) {
      await client.query(
        `UPDATE sync_state.source_pages p SET file_id = '', page_count = 0, wal_salt = NULL, wal_frame = 0
           FROM sync_metadata.client_deployments d
          WHERE d.client_name = $1::text AND p.deployment_id = d.deployment_id`,
        [opts.clientName],
      );
    }
    await grantTenant(client, schemaName, role);
    await client.query('COMMIT');
    logger.info({ schema: schemaName, changes }, `upgraded tenant schema ${schemaName}`);
    return { changes };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Conflict detection compares each target row with the hash recorded when it was last written. Adding columns
 * changes every row's hash although nobody edited it, so rows whose recorded hash still matches their old columns
 * get a hash over the new column set; rows edited out of band since the last sync keep the old one and still count
 * as changed on the target side.
 */
async function rebaseTargetHashes(
  client: pg.ClientBase,
  clientName: string,
  schemaName: string,
  schema: SqliteSchema,
  newColumns: readonly { table: string; column: string }[],
): Promise<void> {
  if (newColumns.length === 0) return;
  const dep = await client.query<{ deployment_id: string }>(
    'SELECT deployment_id FROM sync_metadata.client_deployments WHERE client_name = $1::text',
    [clientName],
  );
  const deploymentId = dep.rows[0]?.deployment_id;
  if (!deploymentId) return;
  const target = await readTargetSchema(client, schemaName);
  for (const tableName of new Set(newColumns.map((c) => c.table))) {
    const source = schema.tables.find((t) => t.name === tableName);
    const targetTable = target.tables.get(tableName);
    if (!source || !targetTable || targetTable.key.length === 0) continue;
    const added = new Set(newColumns.filter((c) => c.table === tableName).map((c) => c.column));
    const before = buildPlan(schemaName, targetTable, {
      ...source,
      columns: source.columns.filter((c) => !added.has(c.name)),
    });
    const after = buildPlan(schemaName, targetTable, source);
    await client.query(
      `UPDATE sync_state.row_state r
          SET target_hash = ${after.sql.hashTarget}
         FROM ${qualified(schemaName, tableName)} t
        WHERE r.deployment_id = $1::uuid AND r.table_name = $2::text
          AND r.row_key = ${keyExpression('t', targetTable.key)}
          AND r.target_hash = ${before.sql.hashTarget}`,
      [deploymentId, tableName],
    );
  }
}

async function addMissingPrimaryKeys(
  client: pg.ClientBase,
  schemaName: string,
  schema: SqliteSchema,
  target: TargetSchema,
): Promise<string[]> {
  const changes: string[] = [];
  const pks = await client.query<{ table_name: string }>(
    `SELECT c.relname AS table_name FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1::text AND i.indisprimary`,
    [schemaName],
  );
  const withPk = new Set(pks.rows.map((r) => r.table_name));
  for (const t of schema.tables) {
    if (!target.tables.has(t.name) || withPk.has(t.name)) continue;
    const pk = primaryKeyOf(t);
    if (pk.length === 0) {
      // A unique index the source has again (it had been dropped): the backup table gets it as its row key.
      const keyIndex = t.indexes.find((ix) => ix.name === keyIndexName(t, []));
      if (keyIndex && (target.tables.get(t.name)?.key.length ?? 0) === 0) {
        const cols = keyIndex.columns as string[];
        await client.query(
          `CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdent(`${t.name}_${cols.join('_')}_key`.slice(0, 63))}
             ON ${qualified(schemaName, t.name)} (${cols.map(quoteIdent).join(', ')})`,
        );
        changes.push(`added unique key ${t.name}(${cols.join(', ')})`);
      }
      continue;
    }
    await client.query(
      `ALTER TABLE ${qualified(schemaName, t.name)} ADD PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`,
    );
    changes.push(`added primary key ${t.name}(${pk.join(', ')})`);
  }
  return changes;
}

type SourceForDdl = {
  schema: SqliteSchema;
  stats: Map<string, Map<string, ColumnStats>>;
  version: string | null;
};

async function readSourceForDdl(sqlitePath: string): Promise<SourceForDdl> {
  const snap = await SqliteSnapshot.open(sqlitePath);
  try {
    try {
      const schema = snap.schema();
      assertOpenWebUI(sqlitePath, schema);
      const stats = new Map<string, Map<string, ColumnStats>>();
      for (const t of schema.tables) stats.set(t.name, columnStats(snap, t));
      return { schema, stats, version: detectOpenWebUIVersion(snap.db, schema) };
    } catch (error) {
      throw toSourceError(sqlitePath, error);
    }
  } finally {
    snap.close();
  }
}

/** One scan per table: storage classes, max text length and 0/1-only flags for the columns mapping depends on. */
function columnStats(snap: SqliteSnapshot, table: SqliteTable): Map<string, ColumnStats> {
  const result = new Map<string, ColumnStats>();
  const cols = table.columns;
  if (cols.length === 0) return result;
  const sqliteIdent = (n: string) => `"${n.replaceAll('"', '""')}"`;
  const parts: string[] = [];
  cols.forEach((c, i) => {
    const q = sqliteIdent(c.name);
    parts.push(
      `group_concat(DISTINCT typeof(${q})) AS t${i}`,
      `max(length(CAST(${q} AS TEXT))) AS l${i}`,
      `sum(CASE WHEN ${q} IS NULL OR ${q} IN (0, 1) THEN 0 ELSE 1 END) AS b${i}`,
    );
  });
  const row = snap.db.prepare(`SELECT ${parts.join(', ')} FROM ${sqliteIdent(table.name)}`).get() as Record<
    string,
    string | number | null
  >;
  cols.forEach((c, i) => {
    const types = String(row[`t${i}`] ?? '')
      .split(',')
      .filter(Boolean);
    result.set(c.name, {
      storageTypes: new Set(types),
      maxLength: row[`l${i}`] === null ? null : Number(row[`l${i}`]),
      onlyZeroOne: Number(row[`b${i}`] ?? 0) === 0,
    });
  });
  return result;
}

function primaryKeyOf(t: SqliteTable): string[] {
  return t.columns
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
}

async function createTables(
  client: pg.ClientBase,
  schemaName: string,
  tables: readonly SqliteTable[],
  schema: SqliteSchema,
  stats: Map<string, Map<string, ColumnStats>>,
  logger: Logger,
): Promise<void> {
  const byName = new Map(schema.tables.map((t) => [t.name, t]));
  const ordered = parentsFirst(
    tables.map((t) => t.name),
    (n) => byName.get(n)?.foreignKeys.map((f) => f.table) ?? [],
  );
  for (const name of ordered) {
    const t = byName.get(name) as SqliteTable;
    const pk = primaryKeyOf(t);
    const defs: string[] = [];
    for (const c of t.columns) {
      const mapped: MappedType = mapColumnType(t, c, stats.get(t.name)?.get(c.name));
      let def = `${quoteIdent(c.name)} ${mapped.serial ? 'serial' : mapped.sql}`;
      if (c.notNull || pk.includes(c.name)) def += ' NOT NULL';
      const dflt = mapped.serial ? null : mapDefault(c.defaultValue, mapped.sql);
      if (dflt !== null) def += ` DEFAULT ${dflt}`;
      defs.push(def);
    }
    if (pk.length > 0) defs.push(`PRIMARY KEY (${pk.map(quoteIdent).join(', ')})`);
    await client.query(`CREATE TABLE ${qualified(schemaName, t.name)} (\n  ${defs.join(',\n  ')}\n)`);
    for (const ix of t.indexes) await createIndex(client, schemaName, t, ix, pk, logger);
  }
  // Foreign keys last, once every parent exists (Open WebUI declares them; PostgreSQL enforces them).
  for (const name of ordered) {
    const t = byName.get(name) as SqliteTable;
    for (const fk of t.foreignKeys) {
      const parent = byName.get(fk.table);
      if (!parent) {
        logger.warn({ table: name, parent: fk.table }, 'foreign key to a table that does not exist skipped');
        continue;
      }
      const to = fk.to.every((c) => c !== null) ? (fk.to as string[]) : primaryKeyOf(parent);
      if (to.length !== fk.from.length) continue;
      const action = (a: string) =>
        /^(CASCADE|SET NULL|SET DEFAULT|RESTRICT)$/i.test(a) ? ` ON DELETE ${a.toUpperCase()}` : '';
      await client.query('SAVEPOINT fk');
      try {
        await client.query(
          `ALTER TABLE ${qualified(schemaName, name)} ADD FOREIGN KEY (${fk.from.map(quoteIdent).join(', ')})
             REFERENCES ${qualified(schemaName, fk.table)} (${to.map(quoteIdent).join(', ')})${action(fk.onDelete)}`,
        );
        await client.query('RELEASE SAVEPOINT fk');
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT fk');
        logger.warn({ err: error, table: name, parent: fk.table }, 'foreign key could not be created; skipped');
      }
    }
  }
}

/** The unique index that serves as the row key of a table: its primary key's, else one on `id`, else the narrowest. */
export function keyIndexName(t: SqliteTable, pk: readonly string[]): string | null {
  const candidates = t.indexes.filter((ix) => ix.unique && !ix.partial && ix.columns.every((c) => c !== null));
  const same = (ix: (typeof candidates)[number], cols: readonly string[]) =>
    ix.columns.length === cols.length && ix.columns.every((c, i) => c === cols[i]);
  if (pk.length > 0) return candidates.find((ix) => same(ix, pk))?.name ?? null;
  const byId = candidates.find((ix) => same(ix, ['id']));
  if (byId) return byId.name;
  return [...candidates].sort((a, b) => a.columns.length - b.columns.length)[0]?.name ?? null;
}

async function createIndex(
  client: pg.ClientBase,
  schemaName: string,
  t: SqliteTable,
  ix: SqliteIndex,
  pk: readonly string[],
  logger: Logger,
): Promise<void> {
  if (ix.origin === 'pk') return;
  let exprs: string[];
  if (ix.columns.every((c) => c !== null)) {
    exprs = (ix.columns as string[]).map(quoteIdent);
  } else {
    // Only the expression Open WebUI uses: lower(<column>).
    const m = /\(\s*lower\s*\(\s*["`[]?(\w+)["`\]]?\s*\)\s*\)/i.exec(ix.sql ?? '');
    if (!m?.[1] || ix.columns.length !== 1) {
      logger.warn({ table: t.name, index: ix.name }, 'expression index not carried over');
      return;
    }
    exprs = [`lower(${quoteIdent(m[1])})`];
  }
  let where = '';
  if (ix.partial) {
    const m = /\bWHERE\s+["`[]?(\w+)["`\]]?\s+IS\s+NOT\s+NULL\s*$/i.exec(ix.sql ?? '');
    if (!m?.[1]) {
      logger.warn({ table: t.name, index: ix.name }, 'partial index not carried over');
      return;
    }
    where = ` WHERE ${quoteIdent(m[1])} IS NOT NULL`;
  }
  const name =
    ix.origin === 'u' ? `${t.name}_${(ix.columns as string[]).join('_')}_key`.slice(0, 63) : ix.name.slice(0, 63);
  // Only the index that identifies rows stays unique. Rows deleted in the source stay in the backup as tombstones
  // until an admin purges them, so any other unique index would refuse the row Open WebUI re-inserts under a new id
  // with the same values (access grants, group members and API keys are saved that way). SQLite enforces those
  // constraints at the source; the backup keeps them as plain indexes.
  const unique = ix.unique && keyIndexName(t, pk) === ix.name;
  await client.query('SAVEPOINT ix');
  try {
    await client.query(
      `CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${quoteIdent(name)} ON ${qualified(
        schemaName,
        t.name,
      )} (${exprs.join(', ')})${where}`,
    );
    await client.query('RELEASE SAVEPOINT ix');
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT ix');
    logger.warn({ err: error, table: t.name, index: ix.name }, 'index could not be created; skipped');
  }
}

/** USAGE on the schema, SELECT/INSERT/UPDATE on its tables, sequences for setval; bookkeeping schema too. */
async function grantTenant(client: pg.ClientBase, schemaName: string, role: string): Promise<void> {
  // The grants below start by revoking: never from the admin or the owner of the tables.
  await assertGrantableServiceRole(client, schemaName, role);
  const s = quoteIdent(schemaName);
  const r = quoteIdent(role);
  const st = quoteIdent(SYNC_STATE_SCHEMA);
  for (const sql of [
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    `REVOKE CREATE ON SCHEMA ${s} FROM ${r}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE ON SCHEMA ${st} TO ${r}`,
    `REVOKE CREATE ON SCHEMA ${st} FROM ${r}`,
    `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ${st} TO ${r}`,
  ]) {
    if (sql.includes(` SCHEMA ${st} `)) {
      // The bookkeeping schema is shared by every tenant: two provisionings granting on it at once collide on the
      // same catalog rows ("tuple concurrently updated"), so those grants take turns (lock held to COMMIT).
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', ['owui-sync:ddl:grant-sync-state']);
    }
    await client.query(sql);
  }
}
