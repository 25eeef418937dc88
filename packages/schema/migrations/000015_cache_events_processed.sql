-- cache_events.processed_at was never written: every node reads the events newer than the last one it saw (by
-- event_id) and the leader's maintenance prunes them by created_at (CACHE_EVENTS_RETENTION_HOURS, migration 000011),
-- so no event is ever "processed" by one reader for all. The column and its partial index go.

DROP INDEX IF EXISTS sync_metadata.cache_events_unprocessed_idx;
ALTER TABLE sync_metadata.cache_events DROP COLUMN IF EXISTS processed_at;
