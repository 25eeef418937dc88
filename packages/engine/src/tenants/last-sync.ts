/**
 * When a tenant last synced, fleet-wide: the newest last_sync_at among the tenants a session sees, which GET /health
 * reports as `last_sync`.
 *
 * /health is polled by every load balancer and monitor, so it stays one round trip: it embeds LAST_SYNC_AT_SQL as a
 * sub-select of its lease query rather than asking in a statement of its own (which would double its cost for one
 * scalar). That sub-select is scoped by the session, as /health always was: the API reads inside its cluster's
 * transaction, where row-level security shows only that cluster's tenants.
 */

/** Scalar sub-select: the newest last_sync_at among the tenants visible to the session (null when none synced). */
export const LAST_SYNC_AT_SQL = '(SELECT max(d.last_sync_at) FROM sync_metadata.client_deployments d)';
