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

-- The cluster a deployment belongs to, for routing a manually triggered job to that cluster's workers. A service
-- session's row-level security hides other clusters' rows, and the caller may not know the cluster yet, so this
-- looks past it and reveals nothing but the cluster name of a deployment whose id the caller already holds.
CREATE OR REPLACE FUNCTION sync_metadata.deployment_cluster(p_deployment_id uuid)
RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.cluster_name
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE d.deployment_id = p_deployment_id
$$;
REVOKE ALL ON FUNCTION sync_metadata.deployment_cluster(uuid) FROM PUBLIC;
