import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, purgeTombstones, runTenantSync } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

/** Keys of a tenant's rows deleted in the source, as sync_state.v_tombstones lists them. */
async function listTombstones(
  client: pg.Pool,
  clientName: string,
): Promise<{ table: string; rowKey: string; deletedAt: Date }[]> {
  const res = await client.query<{ table_name: string; row_key: string; deleted_at: Date }>(
    `SELECT table_name, row_key, deleted_at FROM sync_state.v_tombstones WHERE client_name = $1::text
      ORDER BY table_name, row_key`,
    [clientName],
  );
  return res.rows.map((r) => ({ table: r.table_name, rowKey: r.row_key, deletedAt: r.deleted_at }));
}

describe('incremental sync, deletes and tombstones', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const sqlitePath = scratch.file('webui.db');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };
  const sync = (extra: Partial<Parameters<typeof runTenantSync>[0]> = {}) =>
    runTenantSync({ pool: service, clientName: 'inc', scope, triggeredBy: 'test', batchSize: 3, ...extra });
  const write = (fn: (d: Database.Database) => void) => {
    const d = new Database(sqlitePath);
    try {
      fn(d);
    } finally {
      d.close();
    }
  };

  beforeAll(async () => {
    makeMiniOpenWebUI(sqlitePath, { chats: 20 });
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
    scope = { hostId: (await registerTenant(db.current.adminUrl, 'inc', sqlitePath)).hostId };
    await provisionTenant({ adminPool: admin, clientName: 'inc', sqlitePath, serviceRole: db.current.serviceRole });
    const first = await sync();
    expect(first).toMatchObject({ status: 'success', syncType: 'full' });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('skips a run when the SQLite file has not changed', async () => {
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', syncType: 'incremental', rowsSynced: 0, exitCode: 0 });
    const job = await admin.query('SELECT details FROM sync_metadata.sync_jobs WHERE job_id = $1', [r.jobId]);
    expect(job.rows[0]?.details).toMatchObject({ skipped: expect.any(String) });
  });

  it('moves every changed row, whatever its updated_at says, and only those', async () => {
    write((d) => {
      // Many rows changed (more than one batch), several sharing the cursor's second, one new row at exactly the
      // old cursor value, and a row whose updated_at is NULL.
      const upd = d.prepare('UPDATE chat SET title = ?, updated_at = ? WHERE id = ?');
      for (let i = 0; i < 10; i += 1) upd.run(`changed ${i}`, 1_700_000_500, `chat-${String(i).padStart(5, '0')}`);
      d.prepare(
        "INSERT INTO chat VALUES ('chat-new-at-cursor', 'u1', 'new', NULL, 0, 1700000019, 1700000019, '{}', 0, '{}', NULL)",
      ).run();
      d.prepare("UPDATE chat_message SET content = '\"edited\"', updated_at = NULL WHERE id = 'cm-3'").run();
      d.prepare("UPDATE tag SET name = 'Work!' WHERE id = 'work' AND user_id = 'u2'").run();
      d.prepare("UPDATE auth SET active = 1 WHERE id = 'u2'").run();
    });
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', syncType: 'incremental', rowsFailed: 0 });
    // Every change is in this run, the row whose updated_at became NULL included.
    expect(r.rowsSynced).toBe(10 + 1 + 1 + 1 + 1);
    const titles = await admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM client_inc.chat WHERE title LIKE 'changed %'",
    );
    expect(titles.rows[0]?.n).toBe('10');
    const newRow = await admin.query("SELECT title FROM client_inc.chat WHERE id = 'chat-new-at-cursor'");
    expect(newRow.rows[0]).toEqual({ title: 'new' });
    const cm = await admin.query(
      "SELECT content::text AS c, updated_at FROM client_inc.chat_message WHERE id = 'cm-3'",
    );
    expect(cm.rows[0]).toEqual({ c: '"edited"', updated_at: null });
    const tag = await admin.query("SELECT name FROM client_inc.tag WHERE id = 'work' AND user_id = 'u2'");
    expect(tag.rows[0]).toEqual({ name: 'Work!' });
    const auth = await admin.query("SELECT active FROM client_inc.auth WHERE id = 'u2'");
    expect(auth.rows[0]).toEqual({ active: true });
    // A second run finds nothing new (a commit that changes no value writes nothing).
    write((d) => d.prepare("UPDATE config SET updated_at = updated_at WHERE key = 'rag.top_k'").run());
    const again = await sync({ skipUnchangedSource: false });
    expect(again).toMatchObject({ status: 'success', rowsSynced: 0 });
  });

  it('marks rows deleted in SQLite as tombstones without deleting them, and an admin can purge them', async () => {
    write((d) => {
      d.prepare("DELETE FROM chat_message WHERE chat_id = 'chat-00019'").run();
      d.prepare("DELETE FROM chat WHERE id = 'chat-00019'").run();
      d.prepare("DELETE FROM tag WHERE id = 'work' AND user_id = 'u1'").run();
    });
    const r = await sync();
    expect(r).toMatchObject({ status: 'success', rowsDeleted: 3 });
    const still = await admin.query("SELECT count(*)::int AS n FROM client_inc.chat WHERE id = 'chat-00019'");
    expect(still.rows[0]).toEqual({ n: 1 });
    const tombstones = await listTombstones(admin, 'inc');
    expect(tombstones.map((t) => `${t.table}:${t.rowKey}`).sort()).toEqual([
      'chat:chat-00019',
      'chat_message:cm-19',
      'tag:work\u001fu1',
    ]);
    expect(tombstones[0]?.deletedAt).toBeInstanceOf(Date);
    const job = await admin.query('SELECT rows_deleted FROM sync_metadata.sync_jobs WHERE job_id = $1', [r.jobId]);
    expect(job.rows[0]).toEqual({ rows_deleted: '3' });

    // A full sync keeps them tombstoned (and counts nothing new).
    const full = await sync({ fullSync: true });
    expect(full).toMatchObject({ status: 'success', rowsDeleted: 0, rowsSynced: 0 });

    const purged = await purgeTombstones({ adminPool: admin, clientName: 'inc' });
    expect(purged.removed).toMatchObject({ chat: 1, tag: 1 });
    const gone = await admin.query("SELECT count(*)::int AS n FROM client_inc.chat WHERE id = 'chat-00019'");
    expect(gone.rows[0]).toEqual({ n: 0 });
    expect(await listTombstones(admin, 'inc')).toEqual([]);
  });

  it('brings a tombstoned row back when it reappears in the source', async () => {
    write((d) => d.prepare("INSERT INTO tag VALUES ('work', 'Work', 'u1', 'null')").run());
    const r = await sync({ fullSync: true });
    expect(r).toMatchObject({ status: 'success', rowsSynced: 1 });
    const tag = await admin.query(
      "SELECT name, meta::text AS meta FROM client_inc.tag WHERE id = 'work' AND user_id = 'u1'",
    );
    expect(tag.rows[0]).toEqual({ name: 'Work', meta: 'null' });
  });
  it('tables without updated_at: every change (even back to an old value) and every delete arrives in the next run', async () => {
    const tagName = async () =>
      (await admin.query("SELECT name FROM client_inc.tag WHERE id = 'work' AND user_id = 'u1'")).rows[0]?.name;
    // Another table changes; tag does not, and nothing of it is read.
    write((d) =>
      d.prepare("UPDATE chat SET title = 'poke', updated_at = 1800000000 WHERE id = (SELECT min(id) FROM chat)").run(),
    );
    expect(await sync()).toMatchObject({ status: 'success', rowsSynced: 1 });
    write((d) => d.prepare("UPDATE tag SET name = 'Job' WHERE id = 'work' AND user_id = 'u1'").run());
    expect(await sync()).toMatchObject({ status: 'success', rowsSynced: 1 });
    expect(await tagName()).toBe('Job');
    write((d) => d.prepare("UPDATE tag SET name = 'Work' WHERE id = 'work' AND user_id = 'u1'").run());
    expect(await sync()).toMatchObject({ status: 'success', rowsSynced: 1 });
    expect(await tagName()).toBe('Work');
    write((d) => d.prepare("DELETE FROM tag WHERE id = 'work' AND user_id = 'u1'").run());
    expect(await sync()).toMatchObject({ status: 'success', rowsDeleted: 1 });
    expect((await listTombstones(admin, 'inc')).map((t) => t.rowKey)).toEqual(['work\u001fu1']);
  });
});
