import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type pg from 'pg';
import { CATCH_UP } from './migration-catch-up.ts';

/** Schema that holds the install records (applied migrations); kept out of sync_metadata, which has exactly the documented tables. */
export const ADMIN_SCHEMA = 'sync_admin';

/** Advisory lock key shared by every migrating process (transaction-scoped, so it is pooler-safe). */
const MIGRATION_LOCK_KEY = 7_402_918_331;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

export type Migration = { readonly id: number; readonly name: string; readonly sql: string };

/** A migration file's checksum as schema_migrations records it: SHA-256 of its text (line endings as LF). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n'), 'utf8').digest('hex');
}

/** An applied migration whose file no longer has the text that was applied. */
export class MigrationChangedError extends Error {
  readonly code = 'MIGRATION_CHANGED';
  constructor(
    readonly file: string,
    readonly recorded: string,
    readonly current: string,
  ) {
    super(
      `migration ${file} was changed after it was applied (checksum recorded ${recorded.slice(0, 12)}…, file now ` +
        `${current.slice(0, 12)}…): applied migrations are never edited. Restore the file's applied text ` +
        '(git checkout) and put the change into a new migration with the next number',
    );
    this.name = 'MigrationChangedError';
  }
}

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
 * it with its checksum in sync_admin.schema_migrations in the same transaction. Two processes migrating at once
 * serialise on the lock; the second finds the work done and applies nothing.
 *
 * Applied migrations are frozen: one whose file's checksum differs from the recorded one stops the run with a
 * MigrationChangedError naming the file, before anything later is applied. Rows recorded before checksums existed
 * get theirs now; where that file was edited after its first release, its catch-up (migration-catch-up.ts) first
 * brings an install made from the older text to what the current text creates.
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
    // SHA-256 of the file's text; NULL on rows recorded before checksums were kept.
    await client.query(`ALTER TABLE ${ADMIN_SCHEMA}.schema_migrations ADD COLUMN IF NOT EXISTS checksum text`);
  });
  const applied: string[] = [];
  let alreadyApplied = 0;
  for (const migration of all) {
    const done = await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      const checksum = migrationChecksum(migration.sql);
      const seen = await client.query<{ checksum: string | null }>(
        `SELECT checksum FROM ${ADMIN_SCHEMA}.schema_migrations WHERE id = $1::integer`,
        [migration.id],
      );
      const row = seen.rows[0];
      if (row) {
        if (row.checksum === checksum) return true;
        if (row.checksum !== null) throw new MigrationChangedError(`${migration.name}.sql`, row.checksum, checksum);
        const catchUp = CATCH_UP[migration.name];
        if (catchUp) await client.query(catchUp);
        await client.query(`UPDATE ${ADMIN_SCHEMA}.schema_migrations SET checksum = $2::text WHERE id = $1::integer`, [
          migration.id,
          checksum,
        ]);
        return true;
      }
      await client.query(migration.sql);
      await client.query(
        `INSERT INTO ${ADMIN_SCHEMA}.schema_migrations (id, name, checksum) VALUES ($1::integer, $2::text, $3::text)`,
        [migration.id, migration.name, checksum],
      );
      return false;
    });
    if (done) alreadyApplied += 1;
    else applied.push(migration.name);
  }
  return { applied, alreadyApplied };
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
