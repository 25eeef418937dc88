import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { registerTenant, scratchDir } from './helpers.ts';

/**
 * The 43 tables of a fresh Open WebUI 0.11.0 SQLite database (declared types, NOT NULL and primary keys as the
 * reference lists them), and the PostgreSQL type Open WebUI's own migrations create for every column. The tenant
 * schema must match the latter exactly.
 */
type Reference = Record<
  string,
  { pk: string[]; columns: { name: string; sqlite: string; pg: string; notNull: boolean }[] }
>;
const REFERENCE = JSON.parse(
  readFileSync(new URL('./data/openwebui-0.11.0-columns.json', import.meta.url), 'utf8'),
) as Reference;

const pgName = (t: string) =>
  t.replace(/^varchar\((\d+)\)$/, 'character varying($1)').replace(/^varchar$/, 'character varying');

function buildFresh0110(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = wal');
  for (const [table, def] of Object.entries(REFERENCE)) {
    const cols = def.columns.map((c) => `"${c.name}" ${c.sqlite}${c.notNull ? ' NOT NULL' : ''}`);
    db.exec(`CREATE TABLE "${table}" (${cols.join(', ')}, PRIMARY KEY (${def.pk.map((k) => `"${k}"`).join(', ')}))`);
  }
  db.exec(`CREATE UNIQUE INDEX uq_user_email_lower ON "user" (lower(email)) WHERE email IS NOT NULL`);
  db.prepare(`INSERT INTO alembic_version VALUES ('f0bd01a18a3d')`).run();
  db.prepare(
    `INSERT INTO "user" (id, name, email, role, profile_image_url, last_active_at, updated_at, created_at, date_of_birth, info, oauth)
     VALUES ('u1', 'Ada', 'ada@example.com', 'admin', '', 1732000000, 1732000000, 1732000000, '1990-05-17', 'null', NULL)`,
  ).run();
  db.prepare(
    `INSERT INTO channel (id, user_id, name, created_at, updated_at, is_private) VALUES ('c1', 'u1', 'general', ?, ?, 0)`,
  ).run(1_732_000_000_123_456_789n, 1_732_000_000_123_456_789n);
  db.prepare(
    `INSERT INTO message (id, user_id, channel_id, content, data, meta, created_at, updated_at, is_pinned)
     VALUES ('m1', 'u1', 'c1', 'hi', 'null', NULL, ?, ?, 0)`,
  ).run(1_732_000_000_987_654_321n, 1_732_000_000_987_654_321n);
  db.prepare(`INSERT INTO config (key, value, updated_at) VALUES ('rag.top_k', 5, 1732000000)`).run();
  db.prepare(`INSERT INTO config_old (id, data, version, created_at) VALUES (1, '{}', 0, '2025-06-01 10:00:00')`).run();
  db.prepare(`INSERT INTO tag (id, name, user_id, meta) VALUES ('work', 'Work', 'u1', 'null')`).run();
  db.prepare(
    `INSERT INTO folder (id, user_id, name, is_expanded, created_at, updated_at) VALUES ('f1', 'u1', 'F', 1, 1732000000, 1732000000)`,
  ).run();
  db.close();
}

describe('a synced 0.11.0 tenant has Open WebUI PostgreSQL types, keys and values', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const file = scratch.file('webui-0.11.0.db');
  let admin: pg.Pool;
  let service: pg.Pool;

  beforeAll(async () => {
    buildFresh0110(file);
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('creates all 43 tables with the reference PostgreSQL type, nullability and primary key of every column', async () => {
    const res = await provisionTenant({
      adminPool: admin,
      clientName: 'fresh',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    expect(res.tables).toHaveLength(43);
    expect(res.openwebuiVersion).toBe('alembic:f0bd01a18a3d');
    const cols = await admin.query<{ t: string; c: string; type: string; nn: boolean }>(
      `SELECT c.relname AS t, a.attname AS c, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS nn
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'client_fresh'::regnamespace AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    const actual = new Map(cols.rows.map((r) => [`${r.t}.${r.c}`, r]));
    const mismatches: string[] = [];
    for (const [table, def] of Object.entries(REFERENCE)) {
      for (const c of def.columns) {
        const got = actual.get(`${table}.${c.name}`);
        const notNull = c.notNull || def.pk.includes(c.name);
        if (!got) mismatches.push(`${table}.${c.name} missing`);
        else if (got.type !== pgName(c.pg) || got.nn !== notNull) {
          mismatches.push(
            `${table}.${c.name}: ${got.type}${got.nn ? ' not null' : ''} != ${c.pg}${notNull ? ' not null' : ''}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
    const pks = await admin.query<{ t: string; def: string }>(
      `SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE connamespace = 'client_fresh'::regnamespace AND contype = 'p'`,
    );
    const pkOf = new Map(pks.rows.map((r) => [r.t.replace('client_fresh.', '').replaceAll('"', ''), r.def]));
    for (const [table, def] of Object.entries(REFERENCE)) {
      expect(pkOf.get(table), table).toBe(`PRIMARY KEY (${def.pk.join(', ')})`);
    }
    const idx = await admin.query(
      "SELECT indexdef FROM pg_indexes WHERE schemaname = 'client_fresh' AND indexname = 'uq_user_email_lower'",
    );
    // Not unique in the backup: a user deleted in Open WebUI stays as a tombstone, and the same email may sign up again.
    expect(idx.rows[0]?.indexdef).toMatch(
      /^CREATE INDEX uq_user_email_lower ON client_fresh\."user" USING btree \(lower\(\(email\)::text\)\) WHERE \(email IS NOT NULL\)/,
    );
  });

  it('syncs values exactly: nanoseconds, dates, text datetimes, JSON numbers and null', async () => {
    const { hostId } = await registerTenant(db.current.adminUrl, 'fresh', file);
    const r = await runTenantSync({ pool: service, clientName: 'fresh', scope: { hostId }, triggeredBy: 'test' });
    expect(r).toMatchObject({ status: 'success', rowsFailed: 0, rowsSynced: 8 });
    const row = await admin.query(
      `SELECT (SELECT created_at::text FROM client_fresh.message) AS ns,
              (SELECT date_of_birth::text FROM client_fresh."user") AS dob,
              (SELECT info::text FROM client_fresh."user") AS info,
              (SELECT oauth IS NULL FROM client_fresh."user") AS oauth_null,
              (SELECT value::text FROM client_fresh.config) AS top_k,
              (SELECT created_at::text FROM client_fresh.config_old) AS created,
              (SELECT is_expanded FROM client_fresh.folder) AS expanded`,
    );
    expect(row.rows[0]).toEqual({
      ns: '1732000000987654321',
      dob: '1990-05-17',
      info: 'null',
      oauth_null: true,
      top_k: '5',
      created: '2025-06-01 10:00:00',
      expanded: true,
    });
  });
});
