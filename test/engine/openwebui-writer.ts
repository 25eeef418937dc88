import Database from 'better-sqlite3';

/**
 * Writes to an Open WebUI SQLite database the way Open WebUI itself does (backend/open_webui/models/*.py of 0.6.x and
 * 0.11.0; see the schema reference, section 9): one long-lived connection, many updates that leave `updated_at`
 * alone, hard deletes (often bulk, never cascaded by SQLite), rows deleted and re-inserted under new keys, imported
 * chats that keep an old `updated_at`, nanosecond timestamps, and the WAL checkpoints and VACUUMs a running instance
 * goes through. Every operation adapts to the tables and columns of the file's era and does nothing when they are
 * missing. Deterministic for a given seed.
 */
export class OpenWebUIWriter {
  readonly db: Database.Database;
  private readonly rng: () => number;
  private readonly columns = new Map<string, Set<string>>();
  /** Names of the operations applied, in order (for failure messages). */
  readonly log: string[] = [];
  private clock = 1_800_000_000;

  constructor(path: string, seed: number) {
    this.db = new Database(path);
    // Open WebUI's engine options: a busy timeout, foreign keys never enabled.
    this.db.pragma('busy_timeout = 5000');
    this.rng = mulberry32(seed);
    this.refreshSchema();
  }

  close(): void {
    this.db.close();
  }

  refreshSchema(): void {
    this.columns.clear();
    const tables = this.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck()
      .all() as string[];
    for (const t of tables) {
      const cols = this.db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(t) as string[];
      this.columns.set(t, new Set(cols));
    }
  }

  has(table: string, ...cols: string[]): boolean {
    const c = this.columns.get(table);
    return !!c && cols.every((x) => c.has(x));
  }

  private pick<T>(list: readonly T[]): T | undefined {
    return list.length ? list[Math.floor(this.rng() * list.length)] : undefined;
  }

  private ids(table: string, where = '1'): string[] {
    if (!this.has(table, 'id')) return [];
    return this.db.prepare(`SELECT id FROM "${table}" WHERE ${where} ORDER BY id`).pluck().all() as string[];
  }

  private uuid(): string {
    const h = randomId(this.rng) + randomId(this.rng);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  }

  private now(): number {
    this.clock += 1 + Math.floor(this.rng() * 30);
    return this.clock;
  }

  /** Every operation this writer knows, by name. */
  readonly operations: Record<string, () => void> = {
    // users.py: every updater leaves updated_at alone (0.11.0), last_active_at on every request.
    userActivity: () => {
      if (!this.has('user', 'last_active_at')) return;
      const upd = this.db.prepare('UPDATE "user" SET last_active_at = ? WHERE id = ?');
      for (const id of this.ids('user').filter(() => this.rng() < 0.5)) upd.run(this.now(), id);
    },
    userSettings: () => {
      if (!this.has('user', 'settings')) return;
      const id = this.pick(this.ids('user'));
      if (id) {
        this.db
          .prepare('UPDATE "user" SET settings = ?, role = ?, name = name || ? WHERE id = ?')
          .run(JSON.stringify({ ui: { theme: this.rng() < 0.5 ? 'dark' : 'light', n: this.now() } }), 'user', '!', id);
      }
    },
    // chats.py: title renames from the sidebar, archive, pin, share, folder moves, tags in meta, last_read_at.
    chatRename: () => {
      const id = this.pick(this.ids('chat'));
      if (!id) return;
      const title = `Renamed ${this.now()}`;
      if (this.has('chat', 'chat')) {
        this.db
          .prepare("UPDATE chat SET title = ?, chat = json_set(chat, '$.title', ?) WHERE id = ? AND json_valid(chat)")
          .run(title, title, id);
      }
      this.db.prepare('UPDATE chat SET title = ? WHERE id = ?').run(title, id);
    },
    chatArchive: () => {
      if (!this.has('chat', 'archived')) return;
      for (const id of this.ids('chat').filter(() => this.rng() < 0.1)) {
        this.db.prepare('UPDATE chat SET archived = 1 - archived WHERE id = ?').run(id);
      }
    },
    chatFlags: () => {
      const id = this.pick(this.ids('chat'));
      if (!id) return;
      if (this.has('chat', 'pinned')) this.db.prepare('UPDATE chat SET pinned = 1 WHERE id = ?').run(id);
      if (this.has('chat', 'share_id'))
        this.db.prepare('UPDATE chat SET share_id = ? WHERE id = ?').run(randomId(this.rng), id);
      if (this.has('chat', 'folder_id')) this.db.prepare('UPDATE chat SET folder_id = NULL WHERE id = ?').run(id);
      if (this.has('chat', 'meta')) {
        this.db
          .prepare('UPDATE chat SET meta = ? WHERE id = ?')
          .run(JSON.stringify({ tags: ['work', `t${this.now()}`] }), id);
      }
    },
    chatLastRead: () => {
      if (!this.has('chat', 'last_read_at')) return;
      // Same width every time: SQLite overwrites the record in place and only its last overflow page changes.
      for (const id of this.ids('chat').filter(() => this.rng() < 0.2)) {
        this.db.prepare('UPDATE chat SET last_read_at = ? WHERE id = ?').run(this.now(), id);
      }
    },
    /** A value in the middle of a large chat body changes, same length: only an overflow page changes. */
    chatSameSizeEdit: () => {
      if (!this.has('chat', 'chat')) return;
      const id = this.pick(this.ids('chat', 'length(chat) > 6000'));
      if (!id) return;
      const body = this.db.prepare('SELECT chat FROM chat WHERE id = ?').pluck().get(id) as string;
      // A letter inside the text (not an escape), replaced by another letter: the JSON stays valid, same length.
      let at = Math.floor(body.length * 0.6);
      const inEscape = (i: number) => body.lastIndexOf('\\', i) >= i - 6;
      while (at < body.length && !(/[a-z]/.test(body[at] ?? '') && !inEscape(at))) at += 1;
      if (at >= body.length) return;
      const ch = body[at] === 'x' ? 'y' : 'x';
      this.db.prepare('UPDATE chat SET chat = ? WHERE id = ?').run(body.slice(0, at) + ch + body.slice(at + 1), id);
    },
    /** A chat turn: the body grows by a message and updated_at moves (then title/tags land without a bump). */
    chatTurn: () => {
      const id = this.pick(this.ids('chat'));
      if (!id || !this.has('chat', 'chat')) return;
      const msg = {
        id: randomId(this.rng),
        role: 'assistant',
        content: 'lorem ipsum '.repeat(40 + Math.floor(this.rng() * 400)),
      };
      const set = this.has('chat', 'updated_at') ? ', updated_at = ?' : '';
      const args: unknown[] = [JSON.stringify(msg)];
      if (set) args.push(this.now());
      this.db
        .prepare(
          `UPDATE chat SET chat = CASE WHEN json_valid(chat) AND json_type(chat, '$.messages') = 'array'
             THEN json_insert(chat, '$.messages[#]', json(?)) ELSE chat END${set} WHERE id = ?`,
        )
        .run(...args, id);
    },
    /** An imported chat keeps the client's (old) updated_at. */
    chatImport: () => {
      const user = this.pick(this.ids('user'));
      if (!user) return;
      const cols = this.columns.get('chat');
      if (!cols) return;
      const row: Record<string, unknown> = { id: this.uuid(), user_id: user, title: 'Imported' };
      if (cols.has('chat'))
        row.chat = JSON.stringify({ title: 'Imported', messages: [{ role: 'user', content: 'hi '.repeat(2000) }] });
      for (const c of ['created_at', 'updated_at', 'timestamp']) if (cols.has(c)) row[c] = 1_600_000_000;
      for (const c of ['archived', 'pinned']) if (cols.has(c)) row[c] = 0;
      if (cols.has('meta')) row.meta = '{}';
      const names = Object.keys(row).filter((k) => cols.has(k));
      this.db
        .prepare(
          `INSERT INTO chat (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
        )
        .run(...names.map((n) => row[n]));
    },
    /** delete_chat_by_id: the chat, its messages and shares, in separate statements (no cascade in SQLite). */
    chatDelete: () => {
      const id = this.pick(this.ids('chat'));
      if (!id) return;
      if (this.has('chat_message', 'chat_id')) this.db.prepare('DELETE FROM chat_message WHERE chat_id = ?').run(id);
      if (this.has('chatidtag', 'chat_id')) this.db.prepare('DELETE FROM chatidtag WHERE chat_id = ?').run(id);
      this.db.prepare('DELETE FROM chat WHERE id = ?').run(id);
    },
    /** delete_chats_by_user_id: every chat of one user in one statement. */
    chatDeleteAllOfUser: () => {
      const user = this.pick(this.ids('user'));
      if (!user || !this.has('chat', 'user_id')) return;
      if (this.has('chat_message', 'user_id')) this.db.prepare('DELETE FROM chat_message WHERE user_id = ?').run(user);
      this.db.prepare('DELETE FROM chat WHERE user_id = ?').run(user);
    },
    /** Access saves delete every grant of the resource and insert them again under new ids. */
    rekeyed: () => {
      for (const table of ['access_grant', 'group_member', 'api_key']) {
        if (!this.has(table, 'id')) continue;
        const rows = this.db.prepare(`SELECT * FROM "${table}" ORDER BY id LIMIT 3`).all() as Record<string, unknown>[];
        for (const r of rows) {
          this.db.prepare(`DELETE FROM "${table}" WHERE id = ?`).run(r.id);
          const next: Record<string, unknown> = {
            ...r,
            id: table === 'api_key' ? `key_${randomId(this.rng)}` : this.uuid(),
          };
          if (table === 'api_key' && 'key' in next) next.key = `sk-${randomId(this.rng)}`;
          const names = Object.keys(next);
          this.db
            .prepare(
              `INSERT INTO "${table}" (${names.map((n) => `"${n}"`).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
            )
            .run(...names.map((n) => next[n]));
        }
      }
    },
    /** Tables without updated_at and composite keys: tags renamed and removed. */
    tags: () => {
      if (!this.has('tag', 'name')) return;
      const ids = this.db.prepare('SELECT rowid FROM tag ORDER BY rowid').pluck().all() as number[];
      const a = this.pick(ids);
      if (a !== undefined) this.db.prepare('UPDATE tag SET name = name || ? WHERE rowid = ?').run('+', a);
      const b = this.pick(ids);
      if (b !== undefined && this.rng() < 0.5) this.db.prepare('DELETE FROM tag WHERE rowid = ?').run(b);
    },
    /** Nanosecond tables: channel messages edited, pinned (no bump) and added. */
    channelMessages: () => {
      if (!this.has('message', 'content')) return;
      const ids = this.ids('message');
      const id = this.pick(ids);
      if (id) this.db.prepare('UPDATE message SET content = content || ? WHERE id = ?').run(' (edited)', id);
      if (id && this.has('message', 'is_pinned'))
        this.db.prepare('UPDATE message SET is_pinned = 1 WHERE id = ?').run(id);
      if (id && this.rng() < 0.3) this.db.prepare('DELETE FROM message WHERE id = ?').run(this.pick(ids));
    },
    /** Auth rows (no updated_at): password changes and deactivation. */
    auth: () => {
      const id = this.pick(this.ids('auth'));
      if (id && this.has('auth', 'password'))
        this.db.prepare('UPDATE auth SET password = ? WHERE id = ?').run(`$2b$12$${randomId(this.rng)}`, id);
    },
    /** Config rewritten whole (0.6.x) or keys renamed. */
    config: () => {
      if (!this.has('config', 'data')) return;
      const id = this.pick(this.db.prepare('SELECT rowid FROM config').pluck().all() as number[]);
      if (id !== undefined) {
        this.db
          .prepare('UPDATE config SET data = ? WHERE rowid = ?')
          .run(JSON.stringify({ version: 0, ui: { n: this.now() } }), id);
      }
    },
    /** A long-running instance checkpoints its WAL (and SQLite then restarts it). */
    checkpoint: () => {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    },
    /**
     * SQLite's automatic checkpoint (PASSIVE, after a commit): the next transaction restarts the WAL from its start,
     * over the frames the last sync saw.
     */
    autoCheckpoint: () => {
      this.db.pragma('wal_checkpoint(PASSIVE)');
      this.operations.userActivity?.();
    },
    vacuum: () => {
      this.db.exec('VACUUM');
    },
    /** An instance set up with incremental auto-vacuum (pointer-map pages), releasing free pages now and then. */
    incrementalVacuum: () => {
      if (this.db.pragma('auto_vacuum', { simple: true }) !== 2) {
        this.db.pragma('auto_vacuum = INCREMENTAL');
        this.db.exec('VACUUM');
      }
      this.operations.chatDelete?.();
      this.db.pragma('incremental_vacuum(20)');
    },
  };

  /** Applies `n` random operations (checkpoints and VACUUM rarely), each in its own transaction. */
  randomRound(n: number): string[] {
    const names = Object.keys(this.operations).filter(
      (k) => !['vacuum', 'checkpoint', 'incrementalVacuum'].includes(k),
    );
    const done: string[] = [];
    for (let i = 0; i < n; i += 1) {
      const r = this.rng();
      const name =
        r < 0.03 ? 'vacuum' : r < 0.06 ? 'incrementalVacuum' : r < 0.12 ? 'checkpoint' : (this.pick(names) as string);
      this.apply(name);
      done.push(name);
    }
    return done;
  }

  apply(name: string): void {
    const op = this.operations[name];
    if (!op) throw new Error(`unknown operation ${name}`);
    if (['vacuum', 'checkpoint', 'autoCheckpoint', 'incrementalVacuum'].includes(name)) op();
    else this.db.transaction(op)();
    this.log.push(name);
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomId(rng: () => number): string {
  let s = '';
  for (let i = 0; i < 16; i += 1) s += Math.floor(rng() * 16).toString(16);
  return s;
}
