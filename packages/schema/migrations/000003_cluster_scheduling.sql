-- Cluster scheduling: when each tenant's next scheduled sync is due.
-- The leader's scheduler sets next_sync_at to the tenant's next slot when it enqueues a job. Slots are spaced by
-- sync_interval and shifted by a per-tenant offset derived from the deployment id, so tenants sharing an interval
-- are spread over it instead of all firing in the same second, and every leader computes the same slots.
-- NULL means "never scheduled": due at once if the tenant never synced, else one interval after its last sync.
--
-- next_sync_at is deliberately not indexed: the scheduler reads the cluster's tenants in one pass (thousands of
-- rows, a sequential scan either way), and leaving it out of every index lets the frequent updates of this table
-- (slots, sync claims, last sync) be HOT updates, which the free space kept by the lower fillfactor allows.

ALTER TABLE sync_metadata.client_deployments ADD COLUMN IF NOT EXISTS next_sync_at timestamptz;
ALTER TABLE sync_metadata.client_deployments SET (fillfactor = 70);
