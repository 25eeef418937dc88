import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, runTenantSync } from '@owui-sync/engine/sync';
import { useTestDatabase } from '../support/db.ts';
import { makeMiniOpenWebUI, registerTenant, scratchDir } from './helpers.ts';

/**
 * Long text values (chat bodies, long titles) are read from SQLite as bytes and copied through unchanged; they must
 * follow exactly the same rules as short ones: U+0000 removed from text and escaped in JSON, invalid UTF-8 replaced
 * as the string path replaces it, and a BLOB stored in a text column held back (it cannot be stored exactly).
 */
describe('long text values', () => {
  const db = useTestDatabase();
  const scratch = scratchDir();
  const file = scratch.file('long.db');
  let admin: pg.Pool;
  let service: pg.Pool;
  let scope: { hostId: string };
  const sync = (extra: Partial<Parameters<typeof runTenantSync>[0]> = {}) =>
    runTenantSync({ pool: service, clientName: 'long', scope, triggeredBy: 'test', ...extra });
  const write = (fn: (d: Database.Database) => void) => {
    const d = new Database(file);
    try {
      fn(d);
    } finally {
      d.close();
    }
  };
  const row = async (id: string) =>
    (
      await admin.query<{ title: string; chat: string | null; meta: string }>(
        'SELECT title, chat::text AS chat, meta::text AS meta FROM client_long.chat WHERE id = $1',
        [id],
      )
    ).rows[0];

  const longTitle = 'Zoë’s 日本語 notes — '.repeat(200);
  const longBody = JSON.stringify({ messages: [{ content: '🙂 résumé '.repeat(500) }], n: 1.5 });
  // Invalid UTF-8 (a lone continuation byte and a truncated sequence) inside otherwise plain text.
  const invalid = Buffer.concat([
    Buffer.from('a'.repeat(2000)),
    Buffer.from([0x80, 0x41, 0xe2, 0x82]),
    Buffer.from('z'),
  ]);

  beforeAll(async () => {
    makeMiniOpenWebUI(file, { chats: 6 });
    write((d) => {
      const set = d.prepare('UPDATE chat SET title = ?, chat = ? WHERE id = ?');
      set.run(longTitle, longBody, 'chat-00001');
      d.prepare(
        `UPDATE chat SET title = 'x' || char(0) || ?, meta = '{"a":"' || ? || char(0) || '"}' WHERE id = 'chat-00002'`,
      ).run('y'.repeat(3000), 'q'.repeat(3000));
      d.prepare("UPDATE chat SET title = CAST(? AS TEXT) WHERE id = 'chat-00003'").run(invalid);
      d.prepare("UPDATE chat SET title = ? WHERE id = 'chat-00004'").run(Buffer.from(longTitle, 'utf8'));
    });
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 3 });
    scope = { hostId: (await registerTenant(db.current.adminUrl, 'long', file)).hostId };
    await provisionTenant({
      adminPool: admin,
      clientName: 'long',
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
  });

  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('arrive exactly, with the U+0000, invalid UTF-8 and BLOB rules of short values', async () => {
    const first = await sync();
    // Its chat_message rows wait for it too (their parent is missing).
    expect(first).toMatchObject({ status: 'failed', syncType: 'full', rowsFailed: 2 });
    expect(first.error).toMatch(/chat-00004.*BLOB of \d+ bytes cannot be stored exactly in a text column/);
    expect(await row('chat-00001')).toMatchObject({ title: longTitle, chat: longBody });
    expect(await row('chat-00002')).toMatchObject({
      title: `x${'y'.repeat(3000)}`,
      meta: `{"a":"${'q'.repeat(3000)}\\u0000"}`,
    });
    expect((await row('chat-00003'))?.title).toBe(invalid.toString('utf8'));
    expect((await row('chat-00003'))?.title).toContain('\ufffd');
    // Held back, not turned into text: it waits in failed_rows and is retried by every run.
    expect(await row('chat-00004')).toBeUndefined();
  });

  it('are compressed with lz4 when the server has it', async () => {
    const lz4 = await admin.query<{ ok: boolean }>(
      "SELECT 'lz4' = ANY(enumvals) AS ok FROM pg_settings WHERE name = 'default_toast_compression'",
    );
    const method = await admin.query<{ m: string | null }>(
      "SELECT pg_column_compression(chat) AS m FROM client_long.chat WHERE id = 'chat-00001'",
    );
    expect(method.rows[0]?.m).toBe(lz4.rows[0]?.ok ? 'lz4' : 'pglz');
  });

  it('change incrementally, and an unchanged second run writes nothing', async () => {
    const edited = longBody.replace('résumé', 'resume');
    write((d) => {
      d.prepare('UPDATE chat SET chat = ?, updated_at = 1800000000 WHERE id = ?').run(edited, 'chat-00001');
      d.prepare("UPDATE chat SET title = CAST(? AS TEXT), updated_at = 1800000000 WHERE id = 'chat-00005'").run(
        invalid,
      );
    });
    // Changed rows are read another way than a full scan; the same rules hold there.
    write((d) => {
      d.prepare(
        `UPDATE chat SET title = 'w' || char(0) || ?, meta = '{"b":"' || ? || char(0) || '"}', updated_at = 1800000000
          WHERE id = 'chat-00002'`,
      ).run('y'.repeat(3000), 'q'.repeat(3000));
      d.prepare("UPDATE chat SET title = ?, updated_at = 1800000000 WHERE id = 'chat-00004'").run(
        Buffer.from(`${longTitle}!`, 'utf8'),
      );
    });
    const inc = await sync();
    expect(inc, inc.error).toMatchObject({ status: 'failed', syncType: 'incremental', rowsSynced: 3, rowsFailed: 2 });
    expect((await row('chat-00001'))?.chat).toBe(edited);
    expect((await row('chat-00005'))?.title).toBe(invalid.toString('utf8'));
    expect(await row('chat-00002')).toMatchObject({
      title: `w${'y'.repeat(3000)}`,
      meta: `{"b":"${'q'.repeat(3000)}\\u0000"}`,
    });
    expect(await row('chat-00004')).toBeUndefined();
    // Once Open WebUI stores it as text, the held-back row arrives.
    write((d) => d.prepare("UPDATE chat SET title = CAST(title AS TEXT) WHERE id = 'chat-00004'").run());
    // The chat and its message, waiting for it.
    expect(await sync()).toMatchObject({ status: 'success', rowsSynced: 2, rowsFailed: 0 });
    expect((await row('chat-00004'))?.title).toBe(`${longTitle}!`);
    expect(await sync({ skipUnchangedSource: false, fullSync: true })).toMatchObject({
      status: 'success',
      rowsSynced: 0,
    });
  });
});
