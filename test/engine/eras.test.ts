import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { inspectSqliteSource, provisionTenant, runTenantSync, upgradeTenantSchema } from '@owui-sync/engine/sync';
import * as fixtures from '@owui-sync/fixtures';
import { useTestDatabase } from '../support/db.ts';
import { registerTenant, scratchDir } from './helpers.ts';

/** The pre-migration layout (Open WebUI <= 0.1.116): 8 tables, `timestamp DATE` holding epoch seconds. */
function buildPreMigration(file: string): void {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE "user" (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
      role VARCHAR(255) NOT NULL, profile_image_url VARCHAR(255) NOT NULL, timestamp DATE NOT NULL);
    CREATE UNIQUE INDEX user_id ON "user" (id);
    CREATE TABLE auth (id VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL,
      active INTEGER NOT NULL);
    CREATE UNIQUE INDEX auth_id ON auth (id);
    CREATE TABLE chat (id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, title VARCHAR(255) NOT NULL,
      chat TEXT NOT NULL, timestamp DATE NOT NULL);
    CREATE UNIQUE INDEX chat_id ON chat (id);
    CREATE TABLE chatidtag (id VARCHAR(255) NOT NULL, tag_name VARCHAR(255) NOT NULL, chat_id VARCHAR(255) NOT NULL,
      user_id VARCHAR(255) NOT NULL, timestamp DATE NOT NULL);
    CREATE UNIQUE INDEX chatidtag_id ON chatidtag (id);
    CREATE TABLE document (id INTEGER NOT NULL PRIMARY KEY, collection_name VARCHAR(255) NOT NULL,
      name VARCHAR(255) NOT NULL, title VARCHAR(255) NOT NULL, filename VARCHAR(255) NOT NULL, content TEXT,
      user_id VARCHAR(255) NOT NULL, timestamp DATE NOT NULL);
    CREATE UNIQUE INDEX document_collection_name ON document (collection_name);
    CREATE TABLE modelfile (id INTEGER NOT NULL PRIMARY KEY, tag_name VARCHAR(255) NOT NULL,
      user_id VARCHAR(255) NOT NULL, modelfile TEXT NOT NULL, timestamp DATE NOT NULL);
    CREATE TABLE prompt (id INTEGER NOT NULL PRIMARY KEY, command VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
      title VARCHAR(255) NOT NULL, content TEXT NOT NULL, timestamp DATE NOT NULL);
    CREATE UNIQUE INDEX prompt_command ON prompt (command);
    CREATE TABLE tag (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, data TEXT);
    CREATE UNIQUE INDEX tag_id ON tag (id);
    INSERT INTO "user" VALUES ('u1', 'Ada', 'ada@example.com', 'admin', '/user.png', 1704067200);
    INSERT INTO auth VALUES ('u1', 'ada@example.com', 'hash', 1);
    INSERT INTO chat VALUES ('c1', 'u1', 'Hello', '{"messages":[]}', 1704067300);
    INSERT INTO chatidtag VALUES ('t1', 'work', 'c1', 'u1', 1704067300);
    INSERT INTO document VALUES (1, 'col-1', 'doc', 'Doc', 'doc.pdf', NULL, 'u1', 1704067400);
    INSERT INTO modelfile VALUES (1, 'mario', 'u1', 'FROM llama2', 1704067500);
    INSERT INTO prompt VALUES (1, '/summarize', 'u1', 'Summarize', 'Summarize this', 1704067600);
    INSERT INTO tag VALUES ('work', 'work', 'u1', NULL);
  `);
  db.close();
}

describe('every Open WebUI era', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  let admin: pg.Pool;
  let service: pg.Pool;

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  async function syncAll(name: string, file: string): Promise<{ hostId: string }> {
    const { hostId } = await registerTenant(db.current.adminUrl, name, file);
    await provisionTenant({
      adminPool: admin,
      clientName: name,
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    const r = await runTenantSync({ pool: service, clientName: name, scope: { hostId }, triggeredBy: 'test' });
    expect(r, r.error).toMatchObject({ status: 'success', rowsFailed: 0 });
    return { hostId };
  }

  it('pre-migration layout: 8 tables, DATE-declared epoch seconds become bigint; then an upgrade adds tables', async () => {
    const file = scratch.file('pre.db');
    buildPreMigration(file);
    const info = await inspectSqliteSource(file);
    expect(info).toMatchObject({ openwebuiVersion: null, journalMode: 'delete' });
    expect(info.tables).toHaveLength(8);
    const { hostId } = await syncAll('pre', file);
    const types = await admin.query<{ t: string }>(
      `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute
        WHERE attrelid = 'client_pre.chat'::regclass AND attname = 'timestamp'`,
    );
    expect(types.rows[0]).toEqual({ t: 'bigint' });
    const active = await admin.query('SELECT active FROM client_pre.auth');
    expect(active.rows).toEqual([{ active: true }]);
    const ts = await admin.query('SELECT "timestamp" AS ts FROM client_pre.prompt');
    expect(ts.rows).toEqual([{ ts: '1704067600' }]);

    // Open WebUI upgraded: new tables appear; the run stops with the command, the admin applies it, rows follow.
    const d = new Database(file);
    d.exec(`CREATE TABLE memory (id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, content TEXT NOT NULL,
              updated_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
            CREATE UNIQUE INDEX memory_id ON memory (id);
            INSERT INTO memory VALUES ('m1', 'u1', 'likes tea', 1704067700, 1704067700);`);
    d.close();
    const drift = await runTenantSync({ pool: service, clientName: 'pre', scope: { hostId }, triggeredBy: 'test' });
    expect(drift.error).toContain('syncctl client upgrade-schema pre');
    await upgradeTenantSchema({
      adminPool: admin,
      clientName: 'pre',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    const after = await runTenantSync({ pool: service, clientName: 'pre', scope: { hostId }, triggeredBy: 'test' });
    expect(after).toMatchObject({ status: 'success', rowsSynced: 1 });
  });

  // The generator is part of the repository: without it this file fails to load instead of skipping.
  describe('generated databases (@owui-sync/fixtures)', () => {
    it('syncs every era exactly, and a second full sync writes nothing', async () => {
      for (const [i, era] of fixtures.ERAS.entries()) {
        const file = scratch.file(`era-${i}.db`);
        const gen = fixtures.generateOpenWebUIDatabase({ path: file, era, seed: 7 });
        const name = `era${i}`;
        const { hostId } = await syncAll(name, file);
        for (const [table, n] of Object.entries(gen.rowCounts)) {
          const res = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM "client_${name}"."${table}"`);
          expect(res.rows[0]?.n, `${era} ${table}`).toBe(n);
        }
        const again = await runTenantSync({
          pool: service,
          clientName: name,
          scope: { hostId },
          triggeredBy: 'test',
          fullSync: true,
        });
        expect(again, `${era}: ${again.error}`).toMatchObject({
          status: 'success',
          rowsSynced: 0,
          conflictsDetected: 0,
        });
      }
    });
  });
});
