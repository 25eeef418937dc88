import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { NS_BASE, makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

describe('full sync of a hand-made Open WebUI database', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const sqlitePath = scratch.file('webui.db');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };

  beforeAll(async () => {
    makeMiniOpenWebUI(sqlitePath, { chats: 12 });
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
    const t = await registerTenant(db.current.adminUrl, 'acme', sqlitePath);
    scope = { hostId: t.hostId };
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('provisions the schema with Open WebUI PostgreSQL types and keys', async () => {
    const res = await provisionTenant({
      adminPool: admin,
      clientName: 'acme',
      sqlitePath,
      serviceRole: db.current.serviceRole,
    });
    expect(res).toMatchObject({ schemaName: 'client_acme', created: true, skippedExisting: false });
    expect(res.openwebuiVersion).toBe('alembic:c440947495f3');
    const cols = await admin.query<{ table_name: string; column_name: string; t: string }>(
      `SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod) AS t
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = (quote_ident(c.table_schema) || '.' || quote_ident(c.table_name))::regclass
          AND a.attname = c.column_name
        WHERE c.table_schema = 'client_acme'`,
    );
    const type = (t: string, c: string) => cols.rows.find((r) => r.table_name === t && r.column_name === c)?.t;
    expect(type('chat', 'created_at')).toBe('bigint');
    expect(type('chat', 'archived')).toBe('boolean');
    expect(type('chat', 'chat')).toBe('json');
    expect(type('chat', 'id')).toBe('character varying(255)');
    expect(type('auth', 'active')).toBe('boolean');
    expect(type('user', 'date_of_birth')).toBe('date');
    expect(type('message', 'created_at')).toBe('bigint');
    expect(type('config', 'value')).toBe('json');
    const keys = await admin.query<{ rel: string; def: string }>(
      `SELECT conrelid::regclass::text AS rel, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE connamespace = 'client_acme'::regnamespace AND contype IN ('p', 'f') ORDER BY 1, 2`,
    );
    expect(keys.rows).toContainEqual({ rel: 'client_acme.tag', def: 'PRIMARY KEY (id, user_id)' });
    expect(keys.rows).toContainEqual({
      rel: 'client_acme.chat_message',
      def: 'FOREIGN KEY (chat_id) REFERENCES client_acme.chat(id) ON DELETE CASCADE',
    });
    // The service role may write rows but never delete them.
    await expect(service.query('DELETE FROM client_acme.chat')).rejects.toMatchObject({ code: '42501' });
  });

  it('copies every row exactly and records the job', async () => {
    const result = await runTenantSync({ pool: service, clientName: 'acme', scope, triggeredBy: 'test' });
    expect(result).toMatchObject({ status: 'success', syncType: 'full', exitCode: 0, rowsFailed: 0 });
    expect(result.rowsSynced).toBe(2 + 2 + 12 + 12 + 2 + 2 + 3 + 1);
    const counts = await admin.query<{ n: string }>('SELECT count(*) AS n FROM client_acme.chat');
    expect(counts.rows[0]?.n).toBe('12');
    const msg = await admin.query<{ created_at: string }>(
      "SELECT created_at::text FROM client_acme.message WHERE id = 'msg-2'",
    );
    expect(msg.rows[0]?.created_at).toBe((NS_BASE + 1n).toString());
    const json = await admin.query<{ chat: string; meta: string | null; is_null: boolean }>(
      "SELECT chat::text AS chat, meta::text AS meta, meta IS NULL AS is_null FROM client_acme.chat WHERE id = 'chat-00000'",
    );
    const source = new Database(sqlitePath, { readonly: true });
    const srcChat = source.prepare("SELECT chat FROM chat WHERE id = 'chat-00000'").pluck().get();
    source.close();
    expect(json.rows[0]?.chat).toBe(srcChat);
    expect(json.rows[0]).toMatchObject({ meta: 'null', is_null: false });
    const cfg = await admin.query<{ key: string; v: string }>(
      'SELECT key, value::text AS v FROM client_acme.config ORDER BY key',
    );
    expect(cfg.rows).toEqual([
      { key: 'rag.relevance', v: '0.5' },
      { key: 'rag.top_k', v: '5' },
      { key: 'ui.enable_signup', v: 'true' },
    ]);
    const job = await admin.query(
      'SELECT status, sync_type, rows_synced, triggered_by, completed_at IS NOT NULL AS done FROM sync_metadata.sync_jobs WHERE job_id = $1',
      [result.jobId],
    );
    expect(job.rows[0]).toMatchObject({ status: 'success', sync_type: 'full', triggered_by: 'test', done: true });
    const dep = await admin.query(
      "SELECT last_sync_status, last_sync_at IS NOT NULL AS synced FROM sync_metadata.client_deployments WHERE client_name = 'acme'",
    );
    expect(dep.rows[0]).toMatchObject({ last_sync_status: 'success', synced: true });
    const progress = await admin.query<{ table_name: string; cursor_value: string | null; phase: string }>(
      "SELECT table_name, cursor_value, phase FROM sync_metadata.sync_progress WHERE table_name IN ('chat', 'message') ORDER BY 1",
    );
    expect(progress.rows).toEqual([
      { table_name: 'chat', cursor_value: '1700000011', phase: 'done' },
      { table_name: 'message', cursor_value: (NS_BASE + 1n).toString(), phase: 'done' },
    ]);
  });

  it('is idempotent: a second full sync writes nothing and leaves the same data', async () => {
    const before = await withConnection(db.current.adminUrl, (c) =>
      c.query("SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS h FROM client_acme.chat t"),
    );
    const result = await runTenantSync({
      pool: service,
      clientName: 'acme',
      scope,
      triggeredBy: 'test',
      fullSync: true,
    });
    expect(result).toMatchObject({ status: 'success', syncType: 'full', rowsSynced: 0, conflictsDetected: 0 });
    const after = await withConnection(db.current.adminUrl, (c) =>
      c.query("SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS h FROM client_acme.chat t"),
    );
    expect(after.rows[0]).toEqual(before.rows[0]);
  });
});
