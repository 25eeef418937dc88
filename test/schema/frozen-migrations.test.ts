import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { install, loadMigrations, migrate, migrationChecksum, quoteIdent, type Migration } from '@owui-sync/schema';
import { adminQuery, withConnection, withDatabase } from '../support/db.ts';

/**
 * Applied migrations are frozen by their checksums, and installs made from the texts that 000003 and 000006 had
 * before they were edited converge on what a fresh install creates. The older texts are the repository's own
 * migration directories at two past commits (test/schema/fixtures/migrations-<commit>), taken from git history.
 */

const fixture = (commit: string) => fileURLToPath(new URL(`./fixtures/migrations-${commit}/`, import.meta.url));

/** Everything an install defines, as comparable lines (names, definitions, privileges, options), minus data. */
async function catalog(c: pg.ClientBase): Promise<string[]> {
  const schemas = `n.nspname IN ('sync_metadata', 'sync_state', 'sync_api', 'sync_admin')`;
  const queries = [
    `SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' ||
            format_type(a.atttypid, a.atttypmod) || coalesce(' collate ' || co.collname, '') ||
            CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
            coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.collname <> 'default'
      WHERE ${schemas} AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v')`,
    `SELECT 'relation ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity ||
            ' options=' || coalesce(array_to_string(c.reloptions, ','), '') ||
            ' acl=' || coalesce(array_to_string(c.relacl, ','), '')
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${schemas} AND c.relkind IN ('r', 'p', 'v', 'S')`,
    `SELECT 'index ' || indexdef FROM pg_indexes
      WHERE schemaname IN ('sync_metadata', 'sync_state', 'sync_api', 'sync_admin')`,
    `SELECT 'constraint ' || n.nspname || '.' || r.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
       FROM pg_constraint co JOIN pg_class r ON r.oid = co.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
      WHERE ${schemas}`,
    `SELECT 'function ' || pg_get_functiondef(p.oid) || ' acl=' || coalesce(array_to_string(p.proacl, ','), '')
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${schemas}`,
    `SELECT 'view ' || schemaname || '.' || viewname || ' ' || definition FROM pg_views
      WHERE schemaname IN ('sync_metadata', 'sync_state', 'sync_api', 'sync_admin')`,
    `SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' ' ||
            coalesce(qual, '') || ' / ' || coalesce(with_check, '')
       FROM pg_policies WHERE schemaname IN ('sync_metadata', 'sync_state', 'sync_api', 'sync_admin')`,
    `SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${schemas} AND NOT t.tgisinternal`,
    `SELECT 'schema ' || n.nspname || ' acl=' || coalesce(array_to_string(n.nspacl, ','), '') FROM pg_namespace n
      WHERE ${schemas}`,
    `SELECT 'migration ' || id || ' ' || name || ' ' || coalesce(checksum, 'none') FROM sync_admin.schema_migrations`,
  ];
  const lines: string[] = [];
  for (const sql of queries) {
    const res = await c.query<Record<string, string>>(sql);
    for (const row of res.rows) lines.push(String(Object.values(row)[0]));
  }
  return lines.sort();
}

/** What the migration runner did before checksums: the id and name of each file, nothing else. */
async function migrateAsBefore(c: pg.ClientBase, migrations: readonly Migration[]): Promise<void> {
  await c.query('CREATE SCHEMA IF NOT EXISTS sync_admin');
  await c.query(
    `CREATE TABLE IF NOT EXISTS sync_admin.schema_migrations (
       id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  for (const m of migrations) {
    await c.query('BEGIN');
    await c.query(m.sql);
    await c.query('INSERT INTO sync_admin.schema_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
    await c.query('COMMIT');
  }
}

describe('frozen migrations', () => {
  const created: string[] = [];
  afterAll(async () => {
    const { adminUrl } = inject('pg');
    for (const name of created) await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });

  async function emptyDatabase(label: string): Promise<string> {
    const { adminUrl, runId } = inject('pg');
    const name = `owui_t_${runId}_${label}_${randomBytes(3).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${quoteIdent(name)}`);
    created.push(name);
    return withDatabase(adminUrl, name);
  }

  const installOptions = () => {
    const { groupRole, serviceRole } = inject('pg');
    return { serviceRole, groupRole };
  };

  let fresh: string[] | undefined;
  async function freshCatalog(): Promise<string[]> {
    if (!fresh) {
      const url = await emptyDatabase('fresh');
      await install({ adminUrl: url, ...installOptions() });
      fresh = await withConnection(url, catalog);
    }
    return fresh;
  }

  it('records every file with its checksum', async () => {
    const url = await emptyDatabase('sums');
    await withConnection(url, (c) => migrate(c));
    const rows = await adminQuery(url, 'SELECT name, checksum FROM sync_admin.schema_migrations ORDER BY id');
    const files = await loadMigrations();
    expect(rows.rows).toEqual(files.map((m) => ({ name: m.name, checksum: migrationChecksum(m.sql) })));
  });

  it('stops at an applied migration whose file changed, naming the file, and applies nothing after it', async () => {
    const url = await emptyDatabase('edit');
    const files = await loadMigrations();
    await withConnection(url, (c) => migrate(c, files.slice(0, 3)));
    const edited = files.map((m) => (m.id === 2 ? { ...m, sql: `${m.sql}\n-- edited later\n` } : m));
    await expect(withConnection(url, (c) => migrate(c, edited))).rejects.toThrow(
      /migration 000002_sync_engine\.sql was changed after it was applied .*never edited/,
    );
    const rows = await adminQuery(url, 'SELECT count(*)::int AS n FROM sync_admin.schema_migrations');
    expect(rows.rows[0]).toEqual({ n: 3 });
    // A new file is simply applied and recorded: the check is about applied files only.
    const result = await withConnection(url, (c) => migrate(c, files));
    expect(result.applied).toEqual(files.slice(3).map((m) => m.name));
  });

  it.each([
    ['d414b43', 'the first cluster release: 000003 with its next_sync_at index'],
    ['c0db2e7', 'the first restore release: 000006 without verify_results'],
  ])('an install made from the migrations as of %s (%s) converges on a fresh install', async (commit) => {
    const url = await emptyDatabase(`old_${commit}`);
    const old = await loadMigrations(fixture(commit));
    const current = new Map((await loadMigrations()).map((m) => [m.id, m.sql]));
    expect(old.some((m) => current.get(m.id) !== m.sql)).toBe(true);
    await withConnection(url, (c) => migrateAsBefore(c, old));

    const upgraded = await install({ adminUrl: url, ...installOptions() });
    expect(upgraded.migrations.applied).toEqual(
      (await loadMigrations()).filter((m) => !old.some((o) => o.id === m.id)).map((m) => m.name),
    );
    expect(await withConnection(url, catalog)).toEqual(await freshCatalog());
    // Running init again finds every checksum in place and changes nothing.
    const again = await install({ adminUrl: url, ...installOptions() });
    expect(again.migrations.applied).toEqual([]);
  });
});
