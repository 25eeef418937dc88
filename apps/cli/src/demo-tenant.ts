import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';

/**
 * The demo's tenant: a small Open WebUI database with the layout of a long-lived install upgraded to 0.6.x —
 * legacy tables without a primary key (unique index on id), DATETIME-declared epoch integers, INTEGER booleans,
 * composite keys (tag, folder), JSON text including 'null', channel messages with nanosecond timestamps — and
 * enough rows to watch a sync move them.
 */
export function generateDemoTenant(file: string): { tables: string[]; rows: number } {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = wal');
    db.exec(`
      CREATE TABLE "user" (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
        role VARCHAR(255) NOT NULL, profile_image_url TEXT NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, info JSON, settings JSON, oauth_sub TEXT);
      CREATE UNIQUE INDEX user_id ON "user" (id);
      CREATE TABLE auth (id VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, password TEXT NOT NULL,
        active INTEGER NOT NULL);
      CREATE UNIQUE INDEX auth_id ON auth (id);
      CREATE TABLE chat (id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, title TEXT NOT NULL,
        share_id VARCHAR(255), archived INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
        chat JSON, pinned BOOLEAN, meta JSON DEFAULT '{}' NOT NULL, folder_id TEXT);
      CREATE UNIQUE INDEX chat_id ON chat (id);
      CREATE UNIQUE INDEX chat_share_id ON chat (share_id);
      CREATE TABLE tag (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
        meta JSON, CONSTRAINT pk_id_user_id PRIMARY KEY (id, user_id));
      CREATE TABLE folder (id TEXT NOT NULL, parent_id TEXT, user_id TEXT NOT NULL, name TEXT NOT NULL,
        items JSON, meta JSON, is_expanded BOOLEAN NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (id, user_id));
      CREATE TABLE channel (id TEXT NOT NULL, user_id TEXT, type TEXT, name TEXT, description TEXT, data JSON,
        meta JSON, access_control JSON, created_at BIGINT, updated_at BIGINT, PRIMARY KEY (id), UNIQUE (id));
      CREATE TABLE message (id TEXT NOT NULL, user_id TEXT, channel_id TEXT, parent_id TEXT, content TEXT,
        data JSON, meta JSON, created_at BIGINT, updated_at BIGINT, PRIMARY KEY (id), UNIQUE (id));
      CREATE TABLE config (id INTEGER NOT NULL, data JSON NOT NULL, version INTEGER NOT NULL,
        created_at DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, updated_at DATETIME, PRIMARY KEY (id));
      CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL,
        CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
      INSERT INTO alembic_version VALUES ('3781e22d8b01');
    `);
    const t0 = 1_730_000_000;
    const ns = 1_730_000_000_000_000_000n;
    const users = ['ada', 'grace', 'linus'];
    const insUser = db.prepare('INSERT INTO "user" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)');
    const insAuth = db.prepare('INSERT INTO auth VALUES (?, ?, ?, 1)');
    const insChat = db.prepare('INSERT INTO chat VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)');
    const insTag = db.prepare("INSERT INTO tag VALUES (?, ?, ?, 'null')");
    const insFolder = db.prepare('INSERT INTO folder VALUES (?, NULL, ?, ?, ?, NULL, 0, ?, ?)');
    const insMsg = db.prepare('INSERT INTO message VALUES (?, ?, ?, NULL, ?, NULL, ?, ?, ?)');
    let rows = 0;
    db.transaction(() => {
      users.forEach((u, i) => {
        insUser.run(
          u,
          u[0]!.toUpperCase() + u.slice(1),
          `${u}@example.com`,
          i === 0 ? 'admin' : 'user',
          '',
          t0,
          t0 + i,
          t0 + 100 * i,
          i === 1 ? 'null' : null,
          '{"ui":{"theme":"dark"}}',
        );
        insAuth.run(u, `${u}@example.com`, '$2b$12$demo.demo.demo.demo.demo.demo.demo.demo.demo.demo.dem');
        insFolder.run(`work-${u}`, u, 'Work', JSON.stringify({ chats: [] }), t0, t0);
        for (const tag of ['ideas', 'code', 'travel']) insTag.run(tag, tag[0]!.toUpperCase() + tag.slice(1), u);
        rows += 6;
      });
      for (let i = 0; i < 60; i++) {
        const user = users[i % users.length]!;
        const messages = Array.from({ length: 6 }, (_, k) => ({
          id: randomUUID(),
          role: k % 2 ? 'assistant' : 'user',
          content: k % 2 ? `Here is an answer to question ${i}.${k}, with some detail.` : `Question ${i}.${k}?`,
          timestamp: t0 + i * 60 + k,
        }));
        insChat.run(
          randomUUID(),
          user,
          `Demo chat ${i + 1}`,
          i % 17 === 0 ? 1 : 0,
          t0 + i * 60,
          t0 + i * 60 + 5,
          JSON.stringify({ title: `Demo chat ${i + 1}`, models: ['llama3'], messages }),
          i % 10 === 0 ? 1 : 0,
          JSON.stringify({ tags: i % 3 === 0 ? ['ideas'] : [] }),
          i % 4 === 0 ? `work-${user}` : null,
        );
        rows += 1;
      }
      db.prepare(
        "INSERT INTO channel VALUES ('general', 'ada', NULL, 'general', 'Everyone', NULL, NULL, 'null', ?, ?)",
      ).run(ns, ns);
      for (let i = 0; i < 200; i++) {
        const at = ns + BigInt(i) * 1_000_000_007n;
        insMsg.run(randomUUID(), users[i % users.length]!, 'general', `Channel message ${i}`, '{}', at, at);
      }
      db.prepare(
        'INSERT INTO config (id, data, version, updated_at) VALUES (1, \'{"version": 0, "ui": {"default_locale": "en-US"}}\', 0, NULL)',
      ).run();
      rows += 202;
    })();
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    return { tables, rows };
  } finally {
    db.close();
  }
}
