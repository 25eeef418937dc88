import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type pg from 'pg';

/** Schema that holds install bookkeeping; kept out of sync_metadata, which has exactly the documented tables. */
export const ADMIN_SCHEMA = 'sync_admin';

/** Advisory lock key shared by every migrating process (transaction-scoped, so it is pooler-safe). */
const MIGRATION_LOCK_KEY = 7_402_918_331;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

export type Migration = { readonly id: number; readonly name: string; readonly sql: string };

export type MigrateResult = { readonly applied: readonly string[]; readonly alreadyApplied: number };

const FILE_PATTERN = /^(\d{6})_[a-z0-9_]+\.sql$/;

/** Reads the numbered forward-only migration files in order. */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => FILE_PATTERN.test(f)).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const id = Number(FILE_PATTERN.exec(file)?.[1]);
    if (migrations.some((m) => m.id === id)) throw new Error(`two migrations share number ${id}: ${file}`);
    migrations.push({ id, name: path.basename(file, '.sql'), sql: await readFile(path.join(dir, file), 'utf8') });
  }
  return migrations;
}

/**
 * Applies every pending migration, each in its own transaction under a transaction-scoped advisory lock, recording
 * it in sync_admin.schema_migrations in the same transaction. Two processes migrating at once serialise on the lock;
 * the second finds the work done and applies nothing.
 */
export async function migrate(client: pg.ClientBase, migrations?: readonly Migration[]): Promise<MigrateResult> {
  const all = migrations ?? (await loadMigrations());
  await inTransaction(client, async () => {
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ADMIN_SCHEMA}`);
    await client.query(`REVOKE ALL ON SCHEMA ${ADMIN_SCHEMA} FROM PUBLIC`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ADMIN_SCHEMA}.schema_migrations (
         id integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  });
  const applied: string[] = [];
  let alreadyApplied = 0;
  for (const migration of all) {
    const done = await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      const seen = await client.query(`SELECT 1 FROM ${ADMIN_SCHEMA}.schema_migrations WHERE id = $1::integer`, [
        migration.id,
      ]);
      if (seen.rowCount) return true;
      await client.query(migration.sql);
      await client.query(`INSERT INTO ${ADMIN_SCHEMA}.schema_migrations (id, name) VALUES ($1::integer, $2::text)`, [
        migration.id,
        migration.name,
      ]);
      return false;
    });
    if (done) alreadyApplied += 1;
    else applied.push(migration.name);
  }
  return { applied, alreadyApplied };
}

/** Names of the migrations recorded as applied, in order. */
export async function appliedMigrations(client: pg.ClientBase): Promise<string[]> {
  const exists = await client.query(`SELECT to_regclass('${ADMIN_SCHEMA}.schema_migrations') IS NOT NULL AS ok`);
  if (!exists.rows[0]?.ok) return [];
  const res = await client.query<{ name: string }>(`SELECT name FROM ${ADMIN_SCHEMA}.schema_migrations ORDER BY id`);
  return res.rows.map((r) => r.name);
}

async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
