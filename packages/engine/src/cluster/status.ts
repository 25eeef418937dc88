import type { Queryable } from '../db.ts';

/**
 * The status of one cluster: its lease and every registered host with its heartbeat and leadership, as
 * `syncctl cluster status` and GET /api/v1/cluster/status show it. Run inside the cluster's scope (or on an admin
 * connection): row-level security decides which hosts are visible.
 */

export type ClusterNode = {
  host_id: string;
  hostname: string;
  node_name: string;
  cluster_name: string;
  role: string;
  /** The host's own status (online, offline, …), as the heartbeat left it. */
  status: string;
  version: string | null;
  last_heartbeat: Date;
  seconds_since_heartbeat: number;
  is_leader: boolean;
  leader_id: string | null;
  leader_epoch: string | null;
  leader_lease_expires: Date | null;
  lease_valid: boolean;
};

export type ClusterLease = {
  leader_id: string;
  host_id: string | null;
  epoch: number;
  expires_at: Date;
  lease_valid: boolean;
};

export type ClusterStatus = {
  cluster_name: string;
  /** The lease row, valid or not; null before any node has led. */
  leader: ClusterLease | null;
  nodes: ClusterNode[];
};

/** How the nodes are ordered: full nodes first (the CLI's table), or the leader first (the API). */
export const CLUSTER_NODE_ORDER = {
  nodesFirst: "(h.role = 'node') DESC, h.node_name, h.hostname",
  leaderFirst: 'v.is_leader DESC, h.role, h.node_name',
} as const;
export type ClusterNodeOrder = keyof typeof CLUSTER_NODE_ORDER;

const nodesSql = (order: ClusterNodeOrder) => `
  SELECT h.host_id::text AS host_id, h.hostname, h.node_name, h.cluster_name, h.role, h.status, h.version,
         h.last_heartbeat, v.seconds_since_heartbeat, v.is_leader, v.leader_id, v.leader_epoch::text AS leader_epoch,
         v.leader_lease_expires, v.lease_valid
    FROM sync_metadata.hosts h
    JOIN sync_metadata.v_cluster_health v ON v.host_id = h.host_id
   WHERE h.cluster_name = $1::text
   ORDER BY ${CLUSTER_NODE_ORDER[order]}`;

const LEASE_SQL = `
  SELECT leader_id, leader_host_id::text AS leader_host_id, epoch::text AS epoch, expires_at,
         expires_at > now() AS valid
    FROM sync_metadata.leader_election WHERE cluster_name = $1::text`;

/** The cluster's lease and hosts (see the module comment). */
export async function readClusterStatus(
  db: Queryable,
  cluster: string,
  options: { readonly order?: ClusterNodeOrder } = {},
): Promise<ClusterStatus> {
  const nodes = await db.query<ClusterNode>(nodesSql(options.order ?? 'nodesFirst'), [cluster]);
  const lease = await db.query<{
    leader_id: string;
    leader_host_id: string | null;
    epoch: string;
    expires_at: Date;
    valid: boolean;
  }>(LEASE_SQL, [cluster]);
  const l = lease.rows[0];
  return {
    cluster_name: cluster,
    leader: l
      ? {
          leader_id: l.leader_id,
          host_id: l.leader_host_id,
          epoch: Number(l.epoch),
          expires_at: l.expires_at,
          lease_valid: l.valid,
        }
      : null,
    nodes: nodes.rows,
  };
}
