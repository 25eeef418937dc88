-- API-only processes (apps/api, syncctl api) register as hosts of their own role, 'api': they serve the REST API
-- and the dashboard of their cluster, take no part in the leader election, run no job and are never a tenant's
-- host. The heartbeat, the offline marking and the cluster status treat them like every other host.
ALTER TABLE sync_metadata.hosts DROP CONSTRAINT IF EXISTS hosts_role_check;
ALTER TABLE sync_metadata.hosts
    ADD CONSTRAINT hosts_role_check CHECK (role IN ('node', 'worker', 'api', 'admin'));
