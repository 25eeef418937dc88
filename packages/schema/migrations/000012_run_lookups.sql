-- Lookups every sync run makes, indexed so their cost does not grow with the number of tenants.
--
-- Before reading a tenant's file, a run checks that no other tenant has registered the same file (by the real path
-- recorded at registration, or by the registered path for tenants registered before real paths were recorded).
-- Without these indexes that check read every row of client_deployments on every run.

CREATE INDEX IF NOT EXISTS client_deployments_realpath_idx
    ON sync_metadata.client_deployments (sqlite_realpath);
CREATE INDEX IF NOT EXISTS client_deployments_sqlite_path_idx
    ON sync_metadata.client_deployments (sqlite_path) WHERE sqlite_realpath IS NULL;
