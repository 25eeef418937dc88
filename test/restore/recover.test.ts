import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '@owui-sync/engine';
import { listDeleted, parseRestoreTime, recoverUserChats } from '@owui-sync/engine/restore';
import { ERAS, generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { useTestDatabase } from '../support/db.ts';
import { backUp, makeMiniOpenWebUI, scratchDir, sync } from './helpers.ts';
import { assertChatResponseShape, importAsOpenWebUI } from './openwebui-import.ts';

/** Every row of every table of a SQLite file as text, for "nothing of another user is in it" checks. */
function allText(file: string): string {
  const d = new Database(file, { readonly: true });
  try {
    const tables = d.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    return tables
      .map((t) =>
        JSON.stringify(d.prepare(`SELECT * FROM "${t}"`).raw().all(), (_k, v: unknown) =>
          typeof v === 'bigint' ? v.toString() : v,
        ),
      )
      .join('\n');
  } finally {
    d.close();
  }
}

function exec(file: string, sql: string): void {
  const d = new Database(file);
  try {
    d.exec(sql);
  } finally {
    d.close();
  }
}

/** Open WebUI's own pydantic models (pydantic 2, as Open WebUI 0.11.0 uses) where python3 has them. */
const PYDANTIC = path.join(import.meta.dirname, 'openwebui-pydantic.py');
const HAS_PYDANTIC =
  spawnSync('python3', ['-c', 'import sys, pydantic; sys.exit(0 if pydantic.VERSION.startswith("2") else 1)'])
    .status === 0;

function pydanticImport(file: string): { imported: number; titles: string[] } {
  const r = spawnSync('python3', [PYDANTIC, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`Open WebUI's models refused ${file}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as { imported: number; titles: string[] };
}

describe('selective recovery of a user’s chats', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-recover-');
  let admin: pg.Pool;
  let service: pg.Pool;
  const pools = () => ({ admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl });
  let hostId = '';
  const source = () => scratch.file('mini.db');

  beforeAll(async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
    makeMiniOpenWebUI(source(), { chats: 10 }); // even chats are Ada's (u1), odd ones Bob's (u2)
    ({ hostId } = await backUp(pools(), 'mini', source()));
  });
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  const recover = (opts: Partial<Parameters<typeof recoverUserChats>[0]> & { user: string }) =>
    recoverUserChats({ pool: service, clientName: 'mini', scope: { hostId }, ...opts });

  it('chats deleted in the source come back, only those with --deleted-only, in the format Open WebUI imports', async () => {
    exec(source(), "DELETE FROM chat WHERE id IN ('chat-00000', 'chat-00002', 'chat-00001')");
    await sync(service, 'mini', hostId);

    const out = scratch.file('ada-deleted.json');
    const r = await recover({ user: 'ADA@Example.com', deletedOnly: true, out });
    expect(r.user).toMatchObject({ id: 'u1', email: 'ada@example.com', deletedAt: null });
    expect(r.chats.map((c) => c.id).sort()).toEqual(['chat-00000', 'chat-00002']);
    expect(r.chats.every((c) => c.deletedAt !== null)).toBe(true);
    expect(r.openwebuiRevision).toBe('c440947495f3');
    const text = fs.readFileSync(out, 'utf8');
    expect(text).toBe(r.exportJson);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const imported = importAsOpenWebUI(text);
    assertChatResponseShape(text);
    expect(imported.map((c) => c.title).sort()).toEqual(['Chat 0', 'Chat 2']);
    const chat0 = imported.find((c) => c.title === 'Chat 0');
    // The body byte for byte as Open WebUI stored it (escapes included); JSON null meta imports as {}.
    expect(text).toContain('"messages":[{"id":"m0","content":"hello\\nworld \\\\ \\"quoted\\""}]');
    expect(chat0).toMatchObject({ createdAt: 1_700_000_000, updatedAt: 1_700_000_000, meta: {} });
    expect(imported.find((c) => c.title === 'Chat 2')?.meta).toEqual({ tags: ['a'] });
    expect(text).not.toMatch(/chat-00001|u2|bob/i);

    // Without --deleted-only: every chat of Ada's, live and deleted; still none of Bob's.
    const all = await recover({ user: 'u1' });
    expect(all.chats.map((c) => c.id).sort()).toEqual([
      'chat-00000',
      'chat-00002',
      'chat-00004',
      'chat-00006',
      'chat-00008',
    ]);
    expect(importAsOpenWebUI(all.exportJson)).toHaveLength(5);
    expect(all.exportJson).not.toMatch(/chat-0000[13579]|"u2"/);
    expect(all.path).toBeNull();
  });

  it('--chat picks chats by id, only the user’s own; unknown users and other users’ chats are refused, nothing written', async () => {
    const one = await recover({ user: 'ada@example.com', chatIds: ['chat-00004'] });
    expect(one.chats.map((c) => c.id)).toEqual(['chat-00004']);
    expect(importAsOpenWebUI(one.exportJson)[0]?.title).toBe('Chat 4');

    const out = scratch.file('refused.json');
    await expect(recover({ user: 'ada@example.com', chatIds: ['chat-00003'], out })).rejects.toThrow(
      /no chat "chat-00003" of user ada@example.com in the backup/,
    );
    await expect(recover({ user: 'nobody@example.com', out })).rejects.toThrow(
      /no user with id or e-mail "nobody@example.com" in the backup of tenant "mini"/,
    );
    expect(fs.existsSync(out)).toBe(false);
    // The live tenant file is never a target.
    await expect(recover({ user: 'u1', out: source(), force: true })).rejects.toThrow(/live SQLite database/);
    await expect(recover({ user: 'u1', sqlite: `${source()}-wal`, force: true })).rejects.toThrow(/live SQLite/);
  });

  it('--at: now works, a time before the history names the oldest restorable time, bad times are refused', async () => {
    const now = await recover({ user: 'u1', at: parseRestoreTime('now') });
    expect(now.chats).toHaveLength(5);
    await expect(recover({ user: 'u1', at: parseRestoreTime('-2h') })).rejects.toThrow(
      /cannot be restored to .*: the oldest restorable time is /,
    );
    await expect(recover({ user: 'u1', at: parseRestoreTime('-1d') })).rejects.toThrow(/oldest restorable time/);
    await expect(recover({ user: 'u1', at: new Date(Date.now() + 3_600_000) })).rejects.toThrow(/in the future/);
  });

  it('a deleted account is found by e-mail; its SQLite file holds only its rows; auth only when asked', async () => {
    // Open WebUI's delete-user: the user, its auth row and its chats go (Users.delete_user_by_id).
    exec(
      source(),
      "DELETE FROM chat WHERE user_id = 'u1'; DELETE FROM auth WHERE id = 'u1'; DELETE FROM \"user\" WHERE id = 'u1'",
    );
    await sync(service, 'mini', hostId);

    const file = scratch.file('ada.db');
    const r = await recover({ user: 'ada@example.com', deletedOnly: true, sqlite: file });
    expect(r.user.id).toBe('u1');
    expect(r.user.deletedAt).not.toBeNull();
    expect(r.chats).toHaveLength(5);
    expect(importAsOpenWebUI(r.exportJson)).toHaveLength(5);
    expect(r.sqlite).toMatchObject({ authIncluded: false, integrityCheck: 'ok' });
    expect(r.sqlite?.tables).toMatchObject({ user: 1, chat: 5, chat_message: 5, tag: 1, alembic_version: 1 });
    expect(r.sqlite?.tables.auth).toBeUndefined();
    expect(r.sqlite?.deletedRows).toMatchObject({ user: 1, chat: 5 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = allText(file);
    expect(text).toContain('ada@example.com');
    expect(text).not.toMatch(/u2|bob|chat-0000[13579]|hash/);
    const d = new Database(file, { readonly: true });
    expect(d.prepare('SELECT count(*) FROM sqlite_master WHERE name = ?').pluck().get('auth')).toBe(0);
    expect(d.prepare("SELECT sql FROM sqlite_master WHERE name = 'chat'").pluck().get()).toMatch(/created_at DATETIME/);
    d.close();

    await expect(recover({ user: 'u1', sqlite: file })).rejects.toThrow(/already exists; add --force/);
    const withAuth = await recover({ user: 'u1', sqlite: file, force: true, includeAuth: true });
    expect(withAuth.sqlite?.tables.auth).toBe(1);
    const d2 = new Database(file, { readonly: true });
    expect(d2.prepare('SELECT id, password FROM auth').all()).toEqual([{ id: 'u1', password: 'hash1' }]);
    d2.close();
  });

  it('deleted lists tombstoned chats with title, owner and time; per user; other tables', async () => {
    const all = await listDeleted({ pool: service, clientName: 'mini', scope: { hostId } });
    expect(all.table).toBe('chat');
    expect(all.rows.map((r) => r.key).sort()).toEqual([
      'chat-00000',
      'chat-00001',
      'chat-00002',
      'chat-00004',
      'chat-00006',
      'chat-00008',
    ]);
    expect(all.rows.find((r) => r.key === 'chat-00001')).toMatchObject({
      userId: 'u2',
      email: 'bob@example.com',
      title: 'Chat 1',
    });
    expect(all.counts).toEqual(
      expect.arrayContaining([
        { table: 'chat', deleted: 6 },
        { table: 'user', deleted: 1 },
      ]),
    );

    const bob = await listDeleted({ pool: service, clientName: 'mini', scope: { hostId }, user: 'BOB@example.com' });
    expect(bob.rows.map((r) => r.key)).toEqual(['chat-00001']);
    expect(bob.counts).toEqual([{ table: 'chat', deleted: 1 }]);

    const users = await listDeleted({ pool: service, clientName: 'mini', scope: { hostId }, table: 'user' });
    expect(users.rows).toEqual([expect.objectContaining({ key: 'u1', userId: 'u1', email: 'ada@example.com' })]);
    const limited = await listDeleted({ pool: service, clientName: 'mini', scope: { hostId }, limit: 2 });
    expect(limited.rows).toHaveLength(2);
    expect(limited.truncated).toBe(true);

    await expect(listDeleted({ pool: service, clientName: 'mini', scope: { hostId }, table: 'nope' })).rejects.toThrow(
      /has no table "nope"/,
    );
    await expect(
      listDeleted({ pool: service, clientName: 'mini', scope: { hostId }, table: 'config', user: 'u2' }),
    ).rejects.toThrow(/no user_id column/);
    await expect(listDeleted({ pool: service, clientName: 'ghost', scope: { hostId } })).rejects.toThrow(
      /not registered/,
    );
  });

  it('an address shared by a deleted and a re-created account must be named by id', async () => {
    exec(
      source(),
      `INSERT INTO "user" VALUES ('u9', 'Ada again', 'Ada@example.com', 'user', '', 1, 1, 1, NULL, '{}', NULL)`,
    );
    await sync(service, 'mini', hostId);
    const err = await recover({ user: 'ada@example.com' }).catch((e: unknown) => e as Error);
    expect(String(err)).toMatch(
      /2 accounts have the e-mail "ada@example.com": .*u1 \(deleted .*\).*u9|u9.*u1 \(deleted/,
    );
    const none = await recover({ user: 'u9' });
    expect(none.chats).toEqual([]);
    expect(none.exportJson).toBe('[]\n');
    expect(none.warnings).toEqual(['no chats of Ada@example.com matched; the export is an empty list']);
    expect((await recover({ user: 'u1', deletedOnly: true })).chats).toHaveLength(5);
  });

  it.each(ERAS.map((era, i) => [era, i] as const))('era %s: the export passes Open WebUI’s import', async (era, i) => {
    const file = scratch.file(`era-${i}.db`);
    generateOpenWebUIDatabase({ path: file, era, seed: 3, scale: { users: 2, chats: 6 } });
    const { hostId: h } = await backUp(pools(), `era${i}`, file);
    const d = new Database(file, { readonly: true });
    const u = d.prepare('SELECT id FROM "user" ORDER BY id LIMIT 1').pluck().get() as string;
    const mine = d.prepare('SELECT count(*) FROM chat WHERE user_id = ?').pluck().get(u) as number;
    d.close();
    const r = await recoverUserChats({ pool: service, clientName: `era${i}`, scope: { hostId: h }, user: u });
    expect(r.skipped).toEqual([]);
    expect(r.chats).toHaveLength(mine);
    const imported = importAsOpenWebUI(r.exportJson);
    expect(imported).toHaveLength(mine);
    expect(imported.every((c) => c.createdAt !== null && c.updatedAt !== null)).toBe(true);
    assertChatResponseShape(r.exportJson);
  });

  it.skipIf(!HAS_PYDANTIC)(
    'Open WebUI’s own pydantic models (ChatsImportForm, ChatResponse) accept every era’s export',
    async () => {
      for (const [i] of ERAS.entries()) {
        const d = new Database(scratch.file(`era-${i}.db`), { readonly: true });
        const u = d.prepare('SELECT id FROM "user" ORDER BY id LIMIT 1').pluck().get() as string;
        d.close();
        const out = scratch.file(`era-${i}.json`);
        // The era backups above share this test's host (registerTenant's host-1).
        const rec = await recoverUserChats({
          pool: service,
          clientName: `era${i}`,
          scope: { hostId },
          user: u,
          out,
          force: true,
        });
        // Open WebUI titles an imported chat from its body (models/chats.py:521), as importAsOpenWebUI does.
        const titles = importAsOpenWebUI(rec.exportJson).map((c) => c.title);
        expect(pydanticImport(out)).toEqual({ imported: rec.chats.length, titles });
      }
      const mini = scratch.file('mini-all.json');
      await recover({ user: 'u1', out: mini, force: true });
      expect(pydanticImport(mini).imported).toBe(5);
      // The check can fail: a body as a string, a fractional time.
      const bad = scratch.file('bad.json');
      fs.writeFileSync(
        bad,
        JSON.stringify([
          { id: 'a', user_id: 'u', title: 'T', chat: '{}', created_at: 1.5, updated_at: 1, archived: false },
        ]),
      );
      expect(() => pydanticImport(bad)).toThrow(/valid dictionary[\s\S]*fractional part/);
    },
  );

  it('Open WebUI 0.11.0: messages in the history tree, folders, ChatResponse fields; SQLite with chat_message rows', async () => {
    const file = scratch.file('owui-0.11.db');
    generateOpenWebUIDatabase({
      path: file,
      era: '0.11.0',
      seed: 5,
      scale: { users: 3, chats: 12, chatMessagesPerChat: 3 },
    });
    const { hostId: h } = await backUp(pools(), 'modern', file);
    const d = new Database(file);
    const [u, other] = d.prepare('SELECT id FROM "user" ORDER BY id').pluck().all() as string[];
    const victim = d.prepare('SELECT id FROM chat WHERE user_id = ? ORDER BY id LIMIT 1').pluck().get(u) as string;
    d.prepare('DELETE FROM chat WHERE id = ?').run(victim);
    d.prepare('DELETE FROM chat_message WHERE chat_id = ?').run(victim);
    d.close();
    await sync(service, 'modern', h);

    const out = scratch.file('modern.db');
    const r = await recoverUserChats({
      pool: service,
      clientName: 'modern',
      scope: { hostId: h },
      user: u as string,
      deletedOnly: true,
      sqlite: out,
    });
    expect(r.chats.map((c) => c.id)).toEqual([victim]);
    assertChatResponseShape(r.exportJson);
    const [imported] = importAsOpenWebUI(r.exportJson);
    expect(imported?.messages.size).toBeGreaterThan(0);
    expect(imported?.currentMessageId).toBeTruthy();
    expect(r.sqlite?.tables.chat_message).toBeGreaterThan(0);
    expect(allText(out)).not.toContain(other as string);
    const full = await recoverUserChats({
      pool: service,
      clientName: 'modern',
      scope: { hostId: h },
      user: u as string,
    });
    expect(importAsOpenWebUI(full.exportJson).length).toBe(4);
  });
});

describe('selective recovery at a past time (row history)', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-recover-at-');
  let admin: pg.Pool;
  let service: pg.Pool;
  afterAll(async () => {
    await service?.end();
    await admin?.end();
    scratch.cleanup();
  });

  it('returns the chats as the last run before that time saw them: renamed ones with their old title, deleted ones', async () => {
    admin = createPool(db.current.adminUrl, { max: 2 });
    service = createPool(db.current.serviceUrl, { max: 4 });
    const file = scratch.file('pit.db');
    makeMiniOpenWebUI(file, { chats: 10 }); // even chats are Ada's (u1)
    const pools = { admin, service, serviceRole: db.current.serviceRole, adminUrl: db.current.adminUrl };
    const { hostId } = await backUp(pools, 'pit', file);
    const recover = (opts: Partial<Parameters<typeof recoverUserChats>[0]> & { user: string }) =>
      recoverUserChats({ pool: service, clientName: 'pit', scope: { hostId }, ...opts });
    const before = await recover({ user: 'u1' });
    const titles = new Map(before.chats.map((c) => [c.id, c.title]));
    await new Promise((r) => setTimeout(r, 50));
    const t = new Date();
    // More than a second before the recovery (a time within a second of now means the current backup).
    await new Promise((r) => setTimeout(r, 1100));
    // After T: one chat renamed from the sidebar (updated_at left alone), one deleted, one new.
    const [renamed = '', deleted = ''] = before.chats.map((c) => c.id).sort();
    exec(
      file,
      `UPDATE chat SET title = 'renamed later' WHERE id = '${renamed}';
       DELETE FROM chat WHERE id = '${deleted}';
       INSERT INTO chat (id, user_id, title, chat, created_at, updated_at, share_id, archived)
         SELECT 'chat-new', user_id, 'new later', chat, created_at, updated_at, NULL, 0 FROM chat WHERE id = '${renamed}';`,
    );
    await sync(service, 'pit', hostId);

    const nowResult = await recover({ user: 'u1' });
    expect(nowResult.chats.find((c) => c.id === renamed)?.title).toBe('renamed later');
    expect(nowResult.chats.find((c) => c.id === deleted)?.deletedAt).not.toBeNull();
    expect(nowResult.chats.map((c) => c.id)).toContain('chat-new');

    const atT = await recover({ user: 'u1', at: t });
    expect(new Map(atT.chats.map((c) => [c.id, c.title]))).toEqual(titles);
    expect(atT.chats.find((c) => c.id === deleted)?.deletedAt).not.toBeNull();
    const deletedOnly = await recover({ user: 'u1', at: t, deletedOnly: true });
    expect(deletedOnly.chats.map((c) => c.id)).toEqual([deleted]);
    expect(deletedOnly.chats[0]?.title).toBe(titles.get(deleted));
  });
});
