-- A running sync of a capped fairness group (large or failing tenants) records its group on the tenant's claim,
-- so the claim can count the group's live runs in the cluster and refuse one over the cap. pg-boss's own group
-- concurrency counts active jobs in a snapshot taken when the fetch starts: two workers fetching at the same time
-- both see the group free and both start a job, and the cap lets through as many runs as there are workers. The
-- claim takes a transaction-scoped advisory lock per cluster and group (nothing held past the commit, so it works
-- through a transaction-mode pooler) and counts the claims recorded here. The column is cleared whenever the claim
-- is released, so the partial index holds only the runs in progress.
ALTER TABLE sync_metadata.client_deployments ADD COLUMN IF NOT EXISTS sync_claim_group text;
CREATE INDEX IF NOT EXISTS client_deployments_claim_group
    ON sync_metadata.client_deployments (sync_claim_group)
    WHERE sync_claim_group IS NOT NULL;
