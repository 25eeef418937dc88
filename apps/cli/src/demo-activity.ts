import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type pg from 'pg';
import { errorMessage } from '@owui-sync/engine';
import { duration } from './format.ts';

/** What the demo shows while it runs: leadership changes, finished syncs, and a tenant that keeps being used. */

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

type FeedJob = {
  client_name: string;
  status: string;
  sync_type: string;
  triggered_by: string;
  worker_id: string | null;
  rows_synced: string;
  duration_seconds: string | null;
  completed: string;
  error: string | null;
};

/**
 * Returns one poll of the demo's live feed: prints the leader when it changes and every sync job finished since
 * the previous poll. `onTick` runs after each poll (the demo writes new chats from there).
 */
export function liveFeed(opts: {
  pool: pg.Pool;
  cluster: string;
  say: (line: string) => void;
  onTick?: ((tick: number) => unknown) | undefined;
  quiet: () => boolean;
}): () => Promise<void> {
  let lastLeader = '';
  let since = new Date(Date.now() - 60_000).toISOString();
  let tick = 0;
  return async () => {
    try {
      const l = await opts.pool.query<{ leader_id: string; epoch: string }>(
        'SELECT leader_id, epoch FROM sync_metadata.leader_election WHERE cluster_name = $1::text AND expires_at > now()',
        [opts.cluster],
      );
      const leader = l.rows[0] ? `${l.rows[0].leader_id} (epoch ${l.rows[0].epoch})` : 'none';
      if (leader !== lastLeader) {
        opts.say(`${clock()} 👑 leader: ${leader}`);
        lastLeader = leader;
      }
      const jobs = await opts.pool.query<FeedJob>(
        // completed_at as text keeps its microseconds, so the next poll starts exactly after this row.
        `SELECT client_name, status, sync_type, triggered_by, worker_id, rows_synced, duration_seconds,
                completed_at::text AS completed, error
           FROM sync_metadata.sync_jobs WHERE completed_at > $1::timestamptz ORDER BY completed_at`,
        [since],
      );
      for (const j of jobs.rows) {
        since = j.completed;
        const icon = j.status === 'success' ? '🔄' : j.status === 'conflict' ? '⚠️ ' : '❌';
        opts.say(
          `${clock()} ${icon} ${j.client_name}: ${j.sync_type} sync ${j.status} (by ${j.triggered_by}` +
            `${j.worker_id ? ` on ${j.worker_id}` : ''}): ${j.rows_synced} rows in ${duration(j.duration_seconds)}` +
            `${j.error ? ` — ${j.error}` : ''}`,
        );
      }
      opts.onTick?.(++tick);
    } catch (error) {
      if (!opts.quiet()) opts.say(`${clock()} ⚠️  ${errorMessage(error)}`);
    }
  };
}

function clock(): string {
  return new Date().toISOString().slice(11, 19);
}
