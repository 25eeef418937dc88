import type pg from 'pg';
import { CHUNK_PAGES, type PageHeader, type PageState } from './page-state.ts';
import { copyInto } from './chunk-tx.ts';

/** sync_state.source_pages / source_page_chunks: the page state change capture compares the next snapshot with. */

export async function loadPageHeader(client: pg.ClientBase, deploymentId: string): Promise<PageHeader | null> {
  const res = await client.query<{
    file_id: string;
    btrees: string;
    page_size: number;
    page_count: number;
    wal_salt: string | null;
    wal_frame: number;
    wal_change: string;
    cells_recorded: boolean;
    hashes_recorded: boolean;
  }>(
    `SELECT file_id, btrees, page_size, page_count, wal_salt, wal_frame, wal_change,
            cells_recorded, hashes_recorded FROM sync_state.source_pages
      WHERE deployment_id = $1::uuid`,
    [deploymentId],
  );
  const r = res.rows[0];
  if (!r) return null;
  return {
    fileId: r.file_id,
    btrees: r.btrees,
    pageSize: r.page_size,
    pageCount: r.page_count,
    walSalt: r.wal_salt,
    walFrame: r.wal_frame,
    walChange: Number(r.wal_change),
    cellsRecorded: r.cells_recorded,
    hashesRecorded: r.hashes_recorded,
  };
}

export async function loadPageChunks(
  client: pg.ClientBase,
  deploymentId: string,
  state: PageState,
  chunks: readonly number[],
): Promise<void> {
  if (chunks.length === 0) return;
  const res = await client.query<{ chunk: number; data: Buffer }>(
    `SELECT chunk, data FROM sync_state.source_page_chunks WHERE deployment_id = $1::uuid AND chunk = ANY($2::int[])`,
    [deploymentId, chunks],
  );
  for (const r of res.rows) state.decodeChunk(r.chunk, r.data);
}

export async function loadCellChunks(
  client: pg.ClientBase,
  deploymentId: string,
  state: PageState,
  chunks: readonly number[],
): Promise<void> {
  if (chunks.length === 0) return;
  const res = await client.query<{ data: Buffer }>(
    `SELECT data FROM sync_state.source_cell_chunks WHERE deployment_id = $1::uuid AND chunk = ANY($2::int[])`,
    [deploymentId, chunks],
  );
  for (const r of res.rows) state.cells.decodeChunk(r.data);
}

/** Records `state` (its changed chunks and the header) in one transaction. */
export async function savePageState(
  client: pg.ClientBase,
  deploymentId: string,
  jobId: string,
  state: PageState,
): Promise<void> {
  const chunks = [...state.dirty].filter((c) => c * CHUNK_PAGES <= state.pageCount).sort((a, b) => a - b);
  const cellChunks = [...state.cells.dirty].filter((c) => c * CHUNK_PAGES <= state.pageCount).sort((a, b) => a - b);
  // Losing this commit in a server crash only makes the next run compare more pages: no flush is waited for.
  await client.query("BEGIN; SELECT set_config('synchronous_commit', 'off', true)");
  try {
    await writeChunks(client, deploymentId, 'source_page_chunks', chunks, (c) => state.encodeChunk(c));
    await writeChunks(client, deploymentId, 'source_cell_chunks', cellChunks, (c) =>
      state.cells.encodeChunk(c, state.pageCount),
    );
    await client.query(
      `INSERT INTO sync_state.source_pages AS s
              (deployment_id, file_id, page_size, page_count, wal_salt, wal_frame, job_id, captured_at, btrees, wal_change, cells_recorded,
               hashes_recorded)
       VALUES ($1::uuid, $2::text, $3::int, $4::int, $5::text, $6::int, $7::uuid, now(), $8::text, $9::bigint, $10::boolean,
               $11::boolean)
       ON CONFLICT (deployment_id) DO UPDATE SET file_id = EXCLUDED.file_id, page_size = EXCLUDED.page_size,
         btrees = EXCLUDED.btrees, wal_change = EXCLUDED.wal_change, cells_recorded = EXCLUDED.cells_recorded,
         hashes_recorded = EXCLUDED.hashes_recorded,
         page_count = EXCLUDED.page_count, wal_salt = EXCLUDED.wal_salt, wal_frame = EXCLUDED.wal_frame,
         job_id = EXCLUDED.job_id, captured_at = now()`,
      [
        deploymentId,
        state.fileId,
        state.pageSize,
        state.pageCount,
        state.walSalt,
        state.walFrame,
        jobId,
        state.btrees,
        state.walChange,
        state.cellsRecorded,
        state.hashesRecorded,
      ],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  state.dirty.clear();
  state.cells.dirty.clear();
}

/**
 * Upserts chunks: a few as parameters, many (a full sync writes them all, several MB) through a binary COPY into a
 * transaction-local staging table, which skips the hex text form of bytea.
 */
async function writeChunks(
  client: pg.ClientBase,
  deploymentId: string,
  table: 'source_page_chunks' | 'source_cell_chunks',
  chunks: readonly number[],
  encode: (chunk: number) => Buffer,
): Promise<void> {
  if (chunks.length === 0) return;
  const upsert = `ON CONFLICT (deployment_id, chunk) DO UPDATE SET data = EXCLUDED.data`;
  if (chunks.length <= 16) {
    await client.query(
      `INSERT INTO sync_state.${table} AS c (deployment_id, chunk, data)
       SELECT $1::uuid, k, d FROM unnest($2::int[], $3::bytea[]) AS x(k, d) ${upsert}`,
      [deploymentId, chunks, chunks.map(encode)],
    );
    return;
  }
  await client.query('CREATE TEMP TABLE owui_chunks (chunk integer, data bytea) ON COMMIT DROP');
  const parts: Buffer[] = [];
  for (const c of chunks) {
    const data = encode(c);
    const head = Buffer.alloc(14);
    head.writeInt16BE(2, 0);
    head.writeInt32BE(4, 2);
    head.writeInt32BE(c, 6);
    head.writeInt32BE(data.length, 10);
    parts.push(head, data);
  }
  await copyInto(client, 'COPY pg_temp.owui_chunks (chunk, data) FROM STDIN (FORMAT binary)', Buffer.concat(parts));
  await client.query(
    `INSERT INTO sync_state.${table} AS c (deployment_id, chunk, data)
     SELECT $1::uuid, chunk, data FROM pg_temp.owui_chunks ${upsert}`,
    [deploymentId],
  );
  await client.query('DROP TABLE pg_temp.owui_chunks');
}
