import type pg from 'pg';
import { InvalidInputError } from '../errors.ts';

/**
 * Shared read snapshots: a drill restores the backup, compares the restored file with it and checks its bookkeeping,
 * each on its own connection, and all of them must see the same backup (a sync committing in between would look
 * like a difference). One transaction exports its snapshot (pg_export_snapshot) and stays open; the others import
 * it with SET TRANSACTION SNAPSHOT as their first statement. Nothing outlives the transactions, so this works
 * behind a transaction-mode pooler.
 */

const SNAPSHOT_ID = /^[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?$/i;

/** `SET TRANSACTION SNAPSHOT '…'` for an id pg_export_snapshot returned (refuses anything else). */
export function setSnapshotSql(id: string): string {
  if (!SNAPSHOT_ID.test(id)) throw new InvalidInputError(`not a snapshot id: ${JSON.stringify(id)}`);
  return `SET TRANSACTION SNAPSHOT '${id}'`;
}

/** Exports the snapshot of `client`'s open REPEATABLE READ transaction. */
export async function exportSnapshot(client: Pick<pg.ClientBase, 'query'>): Promise<string> {
  const res = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
  const id = res.rows[0]?.id;
  if (!id) throw new Error('pg_export_snapshot returned nothing');
  return id;
}
