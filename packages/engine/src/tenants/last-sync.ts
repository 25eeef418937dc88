import type { Queryable } from '../db.ts';

/**
 * When a tenant last synced, fleet-wide: the newest last_sync_at among the tenants a session sees, which GET /health
 * reports as `last_sync`.
 *
 * /health is polled by every load balancer and monitor, so it stays one round trip: it embeds LAST_SYNC_AT_SQL as a
 * sub-select of its lease query rather than asking lastSyncAt separately (a second statement would double its
 * cost for one scalar). That sub-select is scoped by the session, as /health always was: the API reads inside its
 * cluster's transaction, where row-level security shows only that cluster's tenants. lastSyncAt is the same
 * question as a call, with an explicit cluster for sessions that see more than one (an admin connection).
 */

/** Scalar sub-select: the newest last_sync_at among the tenants visible to the session (null when none synced). */
export const LAST_SYNC_AT_SQL = '(SELECT max(d.last_sync_at) FROM sync_metadata.client_deployments d)';

const CLUSTER_LAST_SYNC_AT_SQL = `
  SELECT max(d.last_sync_at) AS last_sync_at
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text`;

/**
 * The newest last_sync_at of the cluster's tenants, or of every tenant the session sees when `cluster` is omitted;
 * null when none has synced yet.
 */
export async function lastSyncAt(db: Queryable, cluster?: string): Promise<Date | null> {
  const res =
    cluster === undefined
      ? await db.query<{ last_sync_at: Date | null }>(`SELECT ${LAST_SYNC_AT_SQL} AS last_sync_at`)
      : await db.query<{ last_sync_at: Date | null }>(CLUSTER_LAST_SYNC_AT_SQL, [cluster]);
  return res.rows[0]?.last_sync_at ?? null;
}
