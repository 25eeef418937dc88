-- Tables without an updated_at column cannot be read from a cursor. The engine keeps a fingerprint of such a
-- table's whole content as last applied, so a run whose snapshot has the same content skips comparing it row by row
-- (an incremental run's cost then follows what changed, not the size of those tables).
ALTER TABLE sync_metadata.sync_progress ADD COLUMN IF NOT EXISTS content_fingerprint text;
