-- Change capture from the database file itself (see docs/engine.md): what the last successful run saw of a tenant's
-- SQLite file, page by page. The header row holds the file's identity, page size and count, and where the run's
-- read transaction ended in the WAL (salts, frame, the WAL index's commit counter), and which b-tree (root page)
-- holds which table or index; the chunks hold, for 256 pages each, an 8-byte content hash
-- per page and the b-tree root and rowid owning each overflow page. Written only after a run applied everything.
CREATE TABLE IF NOT EXISTS sync_state.source_pages (
    deployment_id uuid PRIMARY KEY REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    file_id       text NOT NULL,
    btrees        text NOT NULL DEFAULT '',
    page_size     integer NOT NULL,
    page_count    integer NOT NULL,
    wal_salt      text,
    wal_frame     integer NOT NULL DEFAULT 0,
    wal_change    bigint NOT NULL DEFAULT 0,
    cells_recorded boolean NOT NULL DEFAULT false,
    job_id        uuid,
    captured_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sync_state.source_page_chunks (
    deployment_id uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    chunk         integer NOT NULL,
    data          bytea NOT NULL,
    PRIMARY KEY (deployment_id, chunk)
);
ALTER TABLE sync_state.source_page_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The cells of every table leaf page: rowid and an 8-byte hash of each cell, so a changed page's unchanged rows are
-- not read again. Chunks of 256 pages, as above.
CREATE TABLE IF NOT EXISTS sync_state.source_cell_chunks (
    deployment_id uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    chunk         integer NOT NULL,
    data          bytea NOT NULL,
    PRIMARY KEY (deployment_id, chunk)
);
ALTER TABLE sync_state.source_cell_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
