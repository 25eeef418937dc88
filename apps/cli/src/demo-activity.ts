import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';

/**
 * Demo only: makes the tenant look used by copying its most recent chat as a new one (new id, title and
 * timestamps), so incremental syncs have rows to move. Works on any era's `chat` table because it copies whatever
 * columns exist; gives up quietly if the table is not there.
 */
export function appendChat(sqlitePath: string): boolean {
  const db = new Database(sqlitePath, { timeout: 2000 });
  try {
    const cols = db.prepare("SELECT name FROM pragma_table_info('chat')").pluck().all() as string[];
    if (!cols.includes('id')) return false;
    const now = Math.floor(Date.now() / 1000);
    const exprs = cols.map((c) => {
      if (c === 'id') return '@id';
      if (c === 'title') return '@title';
      if (c === 'created_at' || c === 'updated_at') return '@now';
      if (c === 'share_id') return 'NULL';
      return `"${c.replaceAll('"', '""')}"`;
    });
    const info = db
      .prepare(
        `INSERT INTO chat (${cols.map((c) => `"${c.replaceAll('"', '""')}"`).join(', ')})
         SELECT ${exprs.join(', ')} FROM chat ORDER BY rowid DESC LIMIT 1`,
      )
      .run({ id: randomUUID(), title: `Demo chat ${new Date().toISOString().slice(11, 19)}`, now });
    return info.changes > 0;
  } catch {
    return false;
  } finally {
    db.close();
  }
}
