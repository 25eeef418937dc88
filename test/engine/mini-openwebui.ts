import Database from 'better-sqlite3';

export const NS_BASE = 1_732_000_000_123_456_789n;

/**
 * A small hand-made Open WebUI database with the awkward parts of real ones: legacy tables without a primary key
 * (unique index on id), DATETIME-declared epoch integers, INTEGER booleans, a composite key (tag), nanosecond
 * timestamps (message), a JSON column holding a bare number (config.value), 'null' JSON next to SQL NULL, and
 * foreign keys (chat_message → chat).
 */
export function makeMiniOpenWebUI(file: string, opts: { chats?: number; journalMode?: 'wal' | 'delete' } = {}): void {
  const db = new Database(file);
  db.pragma(`journal_mode = ${opts.journalMode ?? 'delete'}`);
  db.exec(`
    CREATE TABLE "user" (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
      role VARCHAR(255) NOT NULL, profile_image_url TEXT NOT NULL, created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, info JSON, settings JSON, date_of_birth DATE);
    CREATE UNIQUE INDEX user_id ON "user" (id);
    CREATE TABLE auth (id VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL, password TEXT NOT NULL,
      active INTEGER NOT NULL);
    CREATE UNIQUE INDEX auth_id ON auth (id);
    CREATE TABLE chat (id VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL, title TEXT NOT NULL,
      share_id VARCHAR(255), archived INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
      chat JSON, pinned BOOLEAN, meta JSON DEFAULT '{}' NOT NULL, folder_id TEXT);
    CREATE UNIQUE INDEX chat_id ON chat (id);
    CREATE UNIQUE INDEX chat_share_id ON chat (share_id);
    CREATE INDEX updated_at_user_id_idx ON chat (updated_at, user_id);
    CREATE TABLE chat_message (id TEXT NOT NULL, chat_id TEXT NOT NULL, role TEXT NOT NULL, content JSON,
      created_at BIGINT, updated_at BIGINT, PRIMARY KEY (id), FOREIGN KEY (chat_id) REFERENCES chat (id) ON DELETE CASCADE);
    CREATE TABLE tag (id VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, user_id VARCHAR(255) NOT NULL,
      meta JSON, CONSTRAINT pk_id_user_id PRIMARY KEY (id, user_id));
    CREATE TABLE message (id TEXT NOT NULL, user_id TEXT, channel_id TEXT, content TEXT, data JSON, meta JSON,
      created_at BIGINT, updated_at BIGINT, PRIMARY KEY (id), UNIQUE (id));
    CREATE TABLE config (key TEXT NOT NULL, value JSON NOT NULL, updated_at BIGINT, PRIMARY KEY (key));
    CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
    INSERT INTO alembic_version VALUES ('c440947495f3');
  `);
  const insUser = db.prepare('INSERT INTO "user" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const insAuth = db.prepare('INSERT INTO auth VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    insUser.run(
      'u1',
      'Ada',
      'ada@example.com',
      'admin',
      '',
      1_700_000_000,
      1_700_000_100,
      1_700_000_200,
      'null',
      '{"ui":{"theme":"dark"}}',
      '1990-05-17',
    );
    insUser.run(
      'u2',
      'Bob',
      'bob@example.com',
      'user',
      '',
      1_700_000_001,
      1_700_000_101,
      1_700_000_201,
      null,
      '{}',
      null,
    );
    insAuth.run('u1', 'ada@example.com', 'hash1', 1);
    insAuth.run('u2', 'bob@example.com', 'hash2', 0);
    const chats = opts.chats ?? 5;
    const insChat = db.prepare('INSERT INTO chat VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const insMsg = db.prepare('INSERT INTO chat_message VALUES (?, ?, ?, ?, ?, ?)');
    for (let i = 0; i < chats; i += 1) {
      const id = `chat-${String(i).padStart(5, '0')}`;
      insChat.run(
        id,
        i % 2 ? 'u2' : 'u1',
        `Chat ${i}`,
        null,
        0,
        1_700_000_000 + i,
        1_700_000_000 + i,
        JSON.stringify({
          title: `Chat ${i}`,
          messages: [{ id: `m${i}`, content: 'hello\nworld \\ "quoted"' }],
          timestamp: 1_700_000_000_000 + i,
        }),
        i % 3 === 0 ? 1 : 0,
        i === 0 ? 'null' : '{"tags":["a"]}',
        null,
      );
      insMsg.run(`cm-${i}`, id, 'user', JSON.stringify(`content ${i}`), 1_700_000_000 + i, 1_700_000_000 + i);
    }
    db.prepare('INSERT INTO tag VALUES (?, ?, ?, ?)').run('work', 'Work', 'u1', 'null');
    db.prepare('INSERT INTO tag VALUES (?, ?, ?, ?)').run('work', 'Work', 'u2', 'null');
    const insMessage = db.prepare('INSERT INTO message VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    insMessage.run('msg-1', 'u1', 'ch-1', 'first', null, 'null', NS_BASE, NS_BASE);
    insMessage.run('msg-2', 'u2', 'ch-1', 'second', '{"n":1}', null, NS_BASE + 1n, NS_BASE + 1n);
    db.prepare('INSERT INTO config VALUES (?, ?, ?)').run('ui.enable_signup', 'true', 1_700_000_000);
    db.prepare('INSERT INTO config VALUES (?, ?, ?)').run('rag.top_k', 5, 1_700_000_000);
    db.prepare('INSERT INTO config VALUES (?, ?, ?)').run('rag.relevance', 0.5, 1_700_000_000);
  })();
  db.close();
}
