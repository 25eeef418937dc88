import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { copyHeader, copyTrailer } from './value-codec.ts';

/** How a chunk reaches PostgreSQL: the settings of its transaction, and binary COPY. */

/**
 * Settings of every chunk transaction (transaction-local, so safe behind a transaction-mode pooler). A chunk's commit
 * need not wait for the WAL flush: its progress row is in the same transaction, so a chunk lost in a server crash is
 * simply redone. Large values (chat bodies) are compressed with lz4 when the server supports it: several times
 * faster than the default pglz, for both writing and reading.
 */
export function chunkSettings(lz4: boolean): string {
  return `SELECT set_config('synchronous_commit', 'off', true)${
    lz4 ? ", set_config('default_toast_compression', 'lz4', true)" : ''
  }`;
}

/** Whether the server was built with lz4 (PostgreSQL 14+ built --with-lz4, as Debian's and Supabase's are). */
export async function serverHasLz4(client: pg.ClientBase): Promise<boolean> {
  const res = await client.query<{ lz4: boolean }>(
    `SELECT coalesce(bool_or('lz4' = ANY(enumvals)), false) AS lz4 FROM pg_settings
      WHERE name = 'default_toast_compression'`,
  );
  return res.rows[0]?.lz4 ?? false;
}

/** Streams a binary COPY payload (header + tuples + trailer) into `sql`. */
export async function copyInto(client: pg.ClientBase, sql: string, tuples: Buffer): Promise<void> {
  const stream = client.query(copyStreams.from(sql));
  await pipeline(Readable.from([copyHeader(), tuples, copyTrailer()]), stream);
}
