import { readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, InvalidInputError, SourceUnusableError } from '@owui-sync/engine';
import { inspectSqliteSource, provisionTenant, runTenantSync, upgradeTenantSchema } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

describe('bad input: clear errors, nothing lost', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  async function tenant(name: string, file: string): Promise<void> {
    scope = { hostId: (await registerTenant(db.current.adminUrl, name, file)).hostId };
  }

  it('rejects hostile client names before touching the database', async () => {
    const file = scratch.file('hostile.db');
    makeMiniOpenWebUI(file);
    for (const name of ['a"; drop schema x; --', 'Robert', '../etc', '']) {
      await expect(
        provisionTenant({ adminPool: admin, clientName: name, sqlitePath: file, serviceRole: db.current.serviceRole }),
      ).rejects.toBeInstanceOf(InvalidInputError);
    }
    const schemas = await admin.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'client_%'");
    expect(schemas.rows).toEqual([]);
  });

  it('explains a missing file, a non-SQLite file, a corrupt file and a non-Open WebUI database', async () => {
    await expect(inspectSqliteSource(scratch.file('absent.db'))).rejects.toThrow(/does not exist/);
    const text = scratch.file('notes.txt');
    writeFileSync(text, 'just some text, definitely not a database '.repeat(100));
    await expect(inspectSqliteSource(text)).rejects.toThrow(/not a SQLite database/);
    const other = scratch.file('other.db');
    const o = new Database(other);
    o.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)');
    o.close();
    await expect(inspectSqliteSource(other)).rejects.toThrow(/not an Open WebUI one.*invoices/);
    const corrupt = scratch.file('corrupt.db');
    makeMiniOpenWebUI(corrupt, { chats: 200 });
    const bytes = readFileSync(corrupt);
    bytes.fill(0x5a, 4096 * 3, 4096 * 6);
    writeFileSync(corrupt, bytes);
    await expect(inspectSqliteSource(corrupt)).rejects.toBeInstanceOf(SourceUnusableError);
    await expect(inspectSqliteSource(corrupt)).rejects.toThrow(/corrupt|malformed/);

    await tenant('missing', scratch.file('gone.db'));
    const r = await runTenantSync({ pool: service, clientName: 'missing', scope, triggeredBy: 'test' });
    expect(r).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(r.error).toMatch(/does not exist or cannot be read/);
    const job = await admin.query('SELECT status, error FROM sync_metadata.sync_jobs WHERE job_id = $1', [r.jobId]);
    expect(job.rows[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/does not exist/) });
  });

  it('fails clearly on schema drift, and the admin upgrade then lets the run copy everything', async () => {
    const file = scratch.file('drift.db');
    makeMiniOpenWebUI(file);
    await tenant('drift', file);
    await provisionTenant({
      adminPool: admin,
      clientName: 'drift',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    expect(await runTenantSync({ pool: service, clientName: 'drift', scope, triggeredBy: 'test' })).toMatchObject({
      status: 'success',
    });
    const d = new Database(file);
    d.exec(
      "ALTER TABLE chat ADD COLUMN tasks JSON; UPDATE chat SET tasks = '[1]', updated_at = 1800000000 WHERE id = 'chat-00001'",
    );
    d.exec(
      'CREATE TABLE note (id TEXT NOT NULL PRIMARY KEY, user_id TEXT, title TEXT, data JSON, created_at BIGINT, updated_at BIGINT)',
    );
    d.exec("INSERT INTO note VALUES ('n1', 'u1', 'Note', '{}', 1732000000000000000, 1732000000000000000)");
    d.close();
    const failed = await runTenantSync({ pool: service, clientName: 'drift', scope, triggeredBy: 'test' });
    expect(failed).toMatchObject({ status: 'failed', exitCode: 1, rowsSynced: 0 });
    expect(failed.error).toContain('new tables: note');
    expect(failed.error).toContain('chat.tasks');
    expect(failed.error).toContain('syncctl client upgrade-schema drift');
    const up = await upgradeTenantSchema({
      adminPool: admin,
      clientName: 'drift',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    expect(up.changes).toEqual(['created table note', 'added column chat.tasks (json)']);
    const ok = await runTenantSync({ pool: service, clientName: 'drift', scope, triggeredBy: 'test' });
    expect(ok).toMatchObject({ status: 'success', rowsFailed: 0 });
    const rows = await admin.query("SELECT tasks::text AS t FROM client_drift.chat WHERE id = 'chat-00001'");
    expect(rows.rows[0]).toEqual({ t: '[1]' });
    const note = await admin.query('SELECT created_at::text AS c FROM client_drift.note');
    expect(note.rows).toEqual([{ c: '1732000000000000000' }]);
  });

  it('keeps a row with invalid JSON out, says which, syncs the rest, and picks it up once fixed', async () => {
    const file = scratch.file('badjson.db');
    makeMiniOpenWebUI(file, { chats: 8 });
    const d = new Database(file);
    d.prepare("UPDATE chat SET chat = '{\"broken\": ' WHERE id = 'chat-00003'").run();
    // U+0000 in text and in JSON text, and a 10 MB chat body.
    d.prepare(
      "UPDATE chat SET title = 'nul' || char(0) || 'title', meta = '{\"a\":\"x' || char(0) || 'y\"}' WHERE id = 'chat-00004'",
    ).run();
    const big = JSON.stringify({ messages: [{ id: 'big', content: 'x'.repeat(10 * 1024 * 1024) }] });
    d.prepare("UPDATE chat SET chat = ? WHERE id = 'chat-00005'").run(big);
    d.close();
    await tenant('badjson', file);
    await provisionTenant({
      adminPool: admin,
      clientName: 'badjson',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    const r = await runTenantSync({ pool: service, clientName: 'badjson', scope, triggeredBy: 'test' });
    // The broken chat, and its message whose parent chat is therefore missing (PostgreSQL enforces the key).
    expect(r).toMatchObject({ status: 'failed', exitCode: 1, rowsFailed: 2 });
    expect(r.error).toMatch(/2 row\(s\) could not be written.*chat.*chat-00003.*json/i);
    const count = await admin.query('SELECT count(*)::int AS n FROM client_badjson.chat');
    expect(count.rows[0]).toEqual({ n: 7 });
    const nul = await admin.query("SELECT title, meta::text AS meta FROM client_badjson.chat WHERE id = 'chat-00004'");
    expect(nul.rows[0]).toEqual({ title: 'nultitle', meta: '{"a":"x\\u0000y"}' });
    const bigRow = await admin.query("SELECT length(chat::text) AS n FROM client_badjson.chat WHERE id = 'chat-00005'");
    expect(bigRow.rows[0]).toEqual({ n: big.length });
    const failedRows = await admin.query(
      'SELECT table_name, row_key, resolved_at, error FROM sync_state.failed_rows ORDER BY table_name',
    );
    expect(failedRows.rows).toEqual([
      { table_name: 'chat', row_key: 'chat-00003', resolved_at: null, error: expect.stringMatching(/json/i) },
      { table_name: 'chat_message', row_key: 'cm-3', resolved_at: null, error: expect.stringMatching(/foreign key/i) },
    ]);

    const fix = new Database(file);
    fix.prepare("UPDATE chat SET chat = '{\"fixed\": true}' WHERE id = 'chat-00003'").run();
    fix.close();
    const again = await runTenantSync({ pool: service, clientName: 'badjson', scope, triggeredBy: 'test' });
    expect(again).toMatchObject({ status: 'success', rowsFailed: 0, rowsSynced: 2 });
    const resolved = await admin.query('SELECT resolved_at IS NOT NULL AS ok FROM sync_state.failed_rows');
    expect(resolved.rows).toEqual([{ ok: true }, { ok: true }]);
  });

  it('retries a locked file with backoff, and fails clearly when it stays locked', async () => {
    const file = scratch.file('locked.db');
    makeMiniOpenWebUI(file);
    await tenant('locked', file);
    await provisionTenant({
      adminPool: admin,
      clientName: 'locked',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    const holder = new Database(file);
    holder.exec('BEGIN EXCLUSIVE');
    const stuck = await runTenantSync({
      pool: service,
      clientName: 'locked',
      scope,
      triggeredBy: 'test',
      lockRetryMs: 600,
    });
    expect(stuck).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(stuck.error).toMatch(/locked by another process.*next run retries/);
    setTimeout(() => holder.exec('COMMIT'), 400);
    const ok = await runTenantSync({
      pool: service,
      clientName: 'locked',
      scope,
      triggeredBy: 'test',
      lockRetryMs: 5000,
    });
    holder.close();
    expect(ok).toMatchObject({ status: 'success' });
  });
});
