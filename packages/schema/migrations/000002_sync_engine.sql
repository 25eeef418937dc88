-- Sync engine bookkeeping.
-- * client_deployments gets a claim (which run owns the tenant, until when) so two syncs of one tenant never run
--   at once, without session advisory locks (pooler-safe), and the source fingerprint of the last completed run.
-- * sync_progress gets the position of an unfinished full sync (resumed by the next run) and the time the
--   table's key set was last compared with the source (deletion detection).
-- * sync_state holds per-row bookkeeping outside the tenant schemas (which must stay exactly what Open WebUI
--   creates): the hashes the last sync saw on each side, tombstones, and rows that could not be written.
--   The service role only ever upserts here; removing rows is an admin operation (purge).

ALTER TABLE sync_metadata.client_deployments
    ADD COLUMN IF NOT EXISTS sync_claim_job_id     uuid,
    ADD COLUMN IF NOT EXISTS sync_claimed_by       text,
    ADD COLUMN IF NOT EXISTS sync_claim_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS source_fingerprint    text;

ALTER TABLE sync_metadata.sync_progress
    ADD COLUMN IF NOT EXISTS full_sync_pending  boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS resume_key         text,
    ADD COLUMN IF NOT EXISTS deletes_checked_at timestamptz,
    -- When the snapshot that produced cursor_value was taken: rows at exactly cursor_value are settled (need no
    -- re-reading) once that snapshot is older than the longest a write may take to commit.
    ADD COLUMN IF NOT EXISTS cursor_read_at     timestamptz;

CREATE SCHEMA IF NOT EXISTS sync_state;
REVOKE ALL ON SCHEMA sync_state FROM PUBLIC;

-- One row per row ever synced. source_hash: hash of the source row as last read; target_hash: hash of the target
-- row as the sync last left it (both hash_record_extended over the typed values). A row changed on the source has
-- a new source hash; a row edited out of band in PostgreSQL no longer matches target_hash.
CREATE TABLE IF NOT EXISTS sync_state.row_state (
    deployment_id   uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    table_name      text NOT NULL,
    row_key         text COLLATE "C" NOT NULL,
    source_hash     bigint,
    target_hash     bigint,
    deleted_at      timestamptz,
    deleted_job_id  uuid,
    job_id          uuid,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment_id, table_name, row_key)
);
CREATE INDEX IF NOT EXISTS row_state_tombstones_idx ON sync_state.row_state (deployment_id, table_name)
    WHERE deleted_at IS NOT NULL;

-- Rows a run could not write (invalid JSON in a json column, a foreign key to a missing parent, …). Retried by key
-- on every run until they succeed (resolved_at set) — they are never silently dropped.
CREATE TABLE IF NOT EXISTS sync_state.failed_rows (
    deployment_id uuid NOT NULL REFERENCES sync_metadata.client_deployments (deployment_id) ON DELETE CASCADE,
    table_name    text NOT NULL,
    row_key       text COLLATE "C" NOT NULL,
    key_values    text NOT NULL,
    error         text NOT NULL,
    job_id        uuid,
    attempts      integer NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    PRIMARY KEY (deployment_id, table_name, row_key)
);
CREATE INDEX IF NOT EXISTS failed_rows_open_idx ON sync_state.failed_rows (deployment_id, table_name)
    WHERE resolved_at IS NULL;

-- Deleted-in-source rows, by tenant: what restore and reports exclude.
CREATE OR REPLACE VIEW sync_state.v_tombstones WITH (security_invoker = true) AS
SELECT d.client_name, d.schema_name, r.deployment_id, r.table_name, r.row_key, r.deleted_at, r.deleted_job_id
FROM sync_state.row_state r
JOIN sync_metadata.client_deployments d ON d.deployment_id = r.deployment_id
WHERE r.deleted_at IS NOT NULL;
