import type pg from 'pg';
import { withTransaction } from '@owui-sync/engine';
import { readClusterStatus, type ClusterLease, type ClusterNode } from '@owui-sync/engine/cluster';
import { clusterHistoryCounts, listTenants, orphanTenantCount } from '@owui-sync/engine/tenants';
import { dropQueuedJobs, inCluster } from './tenants.ts';

/** Cluster-wide views and the deregistration safety flow (CLUSTER_LIFECYCLE_FAQ). */

/** A node of the cluster as `cluster status` prints it (its cluster is the status's own). */
export type NodeRow = Omit<ClusterNode, 'cluster_name' | 'version'>;

export type ClusterStatus = {
  cluster_name: string;
  leader: ClusterLease | null;
  nodes: NodeRow[];
};

export async function clusterStatus(pool: pg.Pool, cluster: string): Promise<ClusterStatus> {
  const s = await inCluster(pool, cluster, (c) => readClusterStatus(c, cluster));
  return {
    cluster_name: s.cluster_name,
    leader: s.leader,
    nodes: s.nodes.map((n) => ({
      host_id: n.host_id,
      hostname: n.hostname,
      node_name: n.node_name,
      role: n.role,
      status: n.status,
      last_heartbeat: n.last_heartbeat,
      seconds_since_heartbeat: n.seconds_since_heartbeat,
      is_leader: n.is_leader,
      leader_id: n.leader_id,
      leader_epoch: n.leader_epoch,
      leader_lease_expires: n.leader_lease_expires,
      lease_valid: n.lease_valid,
    })),
  };
}

/** True when the cluster has a leader holding an unexpired lease (the cluster is alive). */
export async function hasLiveLeader(pool: pg.Pool, cluster: string): Promise<boolean> {
  const status = await clusterStatus(pool, cluster);
  return Boolean(status.leader?.lease_valid);
}

export type DeregisterPlan = {
  cluster_name: string;
  hosts: { host_id: string; node_name: string; hostname: string; role: string; seconds_since_heartbeat: number }[];
  sync_enabled: {
    client_name: string;
    container_name: string | null;
    last_sync_at: Date | null;
    last_sync_status: string | null;
  }[];
  paused: { client_name: string; status: string }[];
  jobs: number;
  conflicts: number;
  cache_events: number;
  leader_rows: number;
};

/** What deregistering the cluster would delete, and which tenants block it. Admin connection. */
export async function planClusterDeregistration(adminPool: pg.Pool, cluster: string): Promise<DeregisterPlan> {
  return withTransaction(adminPool, async (c) => {
    const hosts = await c.query<DeregisterPlan['hosts'][number]>(
      `SELECT host_id, node_name, hostname, role,
              EXTRACT(EPOCH FROM (now() - last_heartbeat))::int AS seconds_since_heartbeat
         FROM sync_metadata.hosts WHERE cluster_name = $1::text ORDER BY node_name`,
      [cluster],
    );
    const enabled = await listTenants(c, cluster, { syncEnabled: true });
    const paused = await listTenants(c, cluster, { syncEnabled: false });
    const history = await clusterHistoryCounts(c, cluster);
    const counts = await c.query<{ cache_events: number; leader_rows: number }>(
      `SELECT (SELECT count(*)::int FROM sync_metadata.cache_events e JOIN sync_metadata.hosts h ON h.host_id = e.host_id
                WHERE h.cluster_name = $1::text) AS cache_events,
              (SELECT count(*)::int FROM sync_metadata.leader_election WHERE cluster_name = $1::text) AS leader_rows`,
      [cluster],
    );
    const n = { ...history, ...(counts.rows[0] ?? { cache_events: 0, leader_rows: 0 }) };
    return {
      cluster_name: cluster,
      hosts: hosts.rows,
      sync_enabled: enabled.map((t) => ({
        client_name: t.client_name,
        container_name: t.container_name,
        last_sync_at: t.last_sync_at,
        last_sync_status: t.last_sync_status,
      })),
      paused: paused.map((t) => ({ client_name: t.client_name, status: t.status })),
      jobs: n.jobs,
      conflicts: n.conflicts,
      cache_events: n.cache_events,
      leader_rows: n.leader_rows,
    };
  });
}

export type DeregisterOutcome = {
  cluster_name: string;
  hosts_deleted: number;
  deployments_deleted: number;
  remaining: { hosts: number; deployments: number; leader_rows: number };
};

/**
 * Deletes every host of the cluster (cascading to deployments, jobs, progress, conflicts, leader and cache rows),
 * re-checking inside the same transaction that no tenant has sync enabled, and verifies nothing is left.
 */
export async function deregisterCluster(adminPool: pg.Pool, cluster: string): Promise<DeregisterOutcome> {
  return withTransaction(adminPool, async (c) => {
    // Lock the cluster's hosts so a concurrent registration or start-sync cannot slip in between check and delete.
    await c.query('SELECT 1 FROM sync_metadata.hosts WHERE cluster_name = $1::text FOR UPDATE', [cluster]);
    const tenants = await listTenants(c, cluster);
    if (tenants.some((t) => t.sync_enabled)) {
      throw new Error(
        `a tenant of cluster "${cluster}" had sync enabled meanwhile; re-run: syncctl cluster deregister`,
      );
    }
    for (const { client_name } of tenants) await dropQueuedJobs(c, client_name);
    const deleted = await c.query('DELETE FROM sync_metadata.hosts WHERE cluster_name = $1::text', [cluster]);
    await c.query('DELETE FROM sync_metadata.leader_election WHERE cluster_name = $1::text', [cluster]);
    const left = await c.query<{ hosts: number; leader_rows: number }>(
      `SELECT (SELECT count(*)::int FROM sync_metadata.hosts WHERE cluster_name = $1::text) AS hosts,
              (SELECT count(*)::int FROM sync_metadata.leader_election WHERE cluster_name = $1::text) AS leader_rows`,
      [cluster],
    );
    const hostsLeft = left.rows[0] ?? { hosts: 0, leader_rows: 0 };
    const remaining = {
      hosts: hostsLeft.hosts,
      deployments: await orphanTenantCount(c),
      leader_rows: hostsLeft.leader_rows,
    };
    if (remaining.hosts || remaining.deployments || remaining.leader_rows) {
      throw new Error(
        `cluster "${cluster}" still has rows after deletion: ${JSON.stringify(remaining)}; nothing was changed`,
      );
    }
    return {
      cluster_name: cluster,
      hosts_deleted: deleted.rowCount ?? 0,
      deployments_deleted: tenants.length,
      remaining,
    };
  });
}
