import type pg from 'pg';
import { CHUNK_PAGES, type PageState } from './change-capture.ts';

/** sync_state.source_pages / source_page_chunks: the page state change capture compares the next snapshot with. */

export type StoredPageHeader = {
  fileId: string;
  btrees: string;
  pageSize: number;
  pageCount: number;
  walSalt: string | null;
  walFrame: number;
  walChange: number;
};

export async function loadPageHeader(client: pg.ClientBase, deploymentId: string): Promise<StoredPageHeader | null> {
  const res = await client.query<{
    file_id: string;
    btrees: string;
    page_size: number;
    page_count: number;
    wal_salt: string | null;
    wal_frame: number;
    wal_change: string;
  }>(
    `SELECT file_id, btrees, page_size, page_count, wal_salt, wal_frame, wal_change FROM sync_state.source_pages
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
  await client.query('BEGIN');
  try {
    // Batches of ~4 MB keep each statement's parameters small.
    for (let i = 0; i < chunks.length; i += 200) {
      const part = chunks.slice(i, i + 200);
      await client.query(
        `INSERT INTO sync_state.source_page_chunks AS c (deployment_id, chunk, data)
         SELECT $1::uuid, k, d FROM unnest($2::int[], $3::bytea[]) AS x(k, d)
         ON CONFLICT (deployment_id, chunk) DO UPDATE SET data = EXCLUDED.data`,
        [deploymentId, part, part.map((c) => state.encodeChunk(c))],
      );
    }
    const cellChunks = [...state.cells.dirty].filter((c) => c * CHUNK_PAGES <= state.pageCount).sort((a, b) => a - b);
    for (let i = 0; i < cellChunks.length; i += 200) {
      const part = cellChunks.slice(i, i + 200);
      await client.query(
        `INSERT INTO sync_state.source_cell_chunks AS c (deployment_id, chunk, data)
         SELECT $1::uuid, k, d FROM unnest($2::int[], $3::bytea[]) AS x(k, d)
         ON CONFLICT (deployment_id, chunk) DO UPDATE SET data = EXCLUDED.data`,
        [deploymentId, part, part.map((c) => state.cells.encodeChunk(c, state.pageCount))],
      );
    }
    await client.query(
      `INSERT INTO sync_state.source_pages AS s
              (deployment_id, file_id, page_size, page_count, wal_salt, wal_frame, job_id, captured_at, btrees, wal_change)
       VALUES ($1::uuid, $2::text, $3::int, $4::int, $5::text, $6::int, $7::uuid, now(), $8::text, $9::bigint)
       ON CONFLICT (deployment_id) DO UPDATE SET file_id = EXCLUDED.file_id, page_size = EXCLUDED.page_size,
         btrees = EXCLUDED.btrees, wal_change = EXCLUDED.wal_change,
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
