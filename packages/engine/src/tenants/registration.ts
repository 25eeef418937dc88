import { hostIdentity } from '../cluster/host-registry.ts';
import type { Queryable } from '../db.ts';

/**
 * Registering and removing tenants: the host a new tenant is attached to, the guard against two names sharing one
 * schema, the registration row itself, and what removing a tenant or a whole cluster takes with it. `syncctl client
 * register|deregister` and `syncctl cluster deregister` ask these on the admin connection, in the transaction (or on
 * the pool) they pass in; the checks around them (is the file an Open WebUI database, is a leader alive) stay with
 * the caller.
 */

// The host a tenant is attached to runs its syncs: a full node, else a worker. Never a host that cannot run syncs (an
// API-only process, role `api`), nor syncctl's own `admin` row while a node or worker exists.
const PICK_HOST_SQL = `
  SELECT host_id, node_name FROM sync_metadata.hosts
   WHERE cluster_name = $1::text AND role IN ('node', 'worker')
   ORDER BY (role = 'node') DESC, created_at DESC
   LIMIT 1`;

const ADMIN_HOST_SQL = `
  INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role, status)
  VALUES ($1::uuid, $2::text, $3::text, $4::text, 'admin', 'online')
  ON CONFLICT (host_id) DO UPDATE SET updated_at = now()
  RETURNING (xmax = 0) AS created`;

export type RegistrationHost = { host_id: string; node_name: string; created: boolean };

/**
 * The host a new tenant is attached to: the cluster's most recent node, else its most recent worker, else this
 * machine's `admin` host row (created, or revived when it exists) so tenants can be registered before the nodes
 * first start. `created` says whether that admin row is new.
 */
export async function hostForRegistration(
  db: Queryable,
  opts: { readonly cluster: string; readonly hostname: string; readonly adminNodeName: string },
): Promise<RegistrationHost> {
  const picked = (await db.query<{ host_id: string; node_name: string }>(PICK_HOST_SQL, [opts.cluster])).rows[0];
  if (picked) return { ...picked, created: false };
  const hostId = hostIdentity({ cluster: opts.cluster, hostname: opts.hostname, nodeName: opts.adminNodeName });
  const res = await db.query<{ created: boolean }>(ADMIN_HOST_SQL, [
    hostId,
    opts.hostname,
    opts.cluster,
    opts.adminNodeName,
  ]);
  return { host_id: hostId, node_name: opts.adminNodeName, created: res.rows[0]?.created ?? true };
}

const SCHEMA_OWNER_SQL =
  'SELECT client_name FROM sync_metadata.client_deployments WHERE schema_name = $1::text AND client_name <> $2::text';

/**
 * The tenant other than `name` whose schema is `schemaName`, or undefined. Names that differ only in `-` versus `_`
 * map to the same schema, so registration refuses a name whose schema already belongs to someone else.
 */
export async function schemaOwner(db: Queryable, schemaName: string, name: string): Promise<string | undefined> {
  const res = await db.query<{ client_name: string }>(SCHEMA_OWNER_SQL, [schemaName, name]);
  return res.rows[0]?.client_name;
}

/** The registration row of a new tenant. */
export type NewTenant = {
  readonly clientName: string;
  readonly hostId: string;
  readonly containerName: string;
  readonly sqlitePath: string;
  readonly schemaName: string;
  readonly syncEnabled: boolean;
  readonly status: string;
  readonly syncInterval: number;
  readonly openwebuiVersion: string | null;
  readonly sqliteRealpath: string | null;
};

const INSERT_TENANT_SQL = `
  INSERT INTO sync_metadata.client_deployments
    (client_name, host_id, container_name, sqlite_path, schema_name, sync_enabled, status, sync_interval,
     openwebui_version, sqlite_realpath)
  VALUES ($1::text, $2::uuid, $3::text, $4::text, $5::text, $6::boolean, $7::text, $8::int, $9::text, $10::text)`;

/**
 * Records a new tenant. A name or schema already taken fails with PostgreSQL's unique violation (23505, its
 * constraint naming client_name or schema_name), which the caller turns into its own message.
 */
export async function insertTenant(db: Queryable, tenant: NewTenant): Promise<void> {
  await db.query(INSERT_TENANT_SQL, [
    tenant.clientName,
    tenant.hostId,
    tenant.containerName,
    tenant.sqlitePath,
    tenant.schemaName,
    tenant.syncEnabled,
    tenant.status,
    tenant.syncInterval,
    tenant.openwebuiVersion,
    tenant.sqliteRealpath,
  ]);
}

/**
 * Removes a tenant's registration; its jobs, progress and conflict history go with it by cascade. Admin
 * connection: the service role cannot delete.
 */
export async function deleteTenant(db: Queryable, deploymentId: string): Promise<void> {
  await db.query('DELETE FROM sync_metadata.client_deployments WHERE deployment_id = $1::uuid', [deploymentId]);
}

const CLUSTER_HISTORY_COUNTS_SQL = `
  WITH d AS (SELECT cd.deployment_id FROM sync_metadata.client_deployments cd
               JOIN sync_metadata.hosts h ON cd.host_id = h.host_id WHERE h.cluster_name = $1::text)
  SELECT (SELECT count(*)::int FROM sync_metadata.sync_jobs WHERE deployment_id IN (SELECT deployment_id FROM d)) AS jobs,
         (SELECT count(*)::int FROM sync_metadata.conflict_log WHERE deployment_id IN (SELECT deployment_id FROM d))
           AS conflicts`;

/** How many sync jobs and conflicts the cluster's tenants have recorded (what deregistering the cluster deletes). */
export async function clusterHistoryCounts(
  db: Queryable,
  cluster: string,
): Promise<{ jobs: number; conflicts: number }> {
  const res = await db.query<{ jobs: number; conflicts: number }>(CLUSTER_HISTORY_COUNTS_SQL, [cluster]);
  return res.rows[0] ?? { jobs: 0, conflicts: 0 };
}

const ORPHAN_TENANTS_SQL = `
  SELECT count(*)::int AS n FROM sync_metadata.client_deployments cd
   WHERE NOT EXISTS (SELECT 1 FROM sync_metadata.hosts h WHERE h.host_id = cd.host_id)`;

/**
 * How many tenants have no host row (the foreign key's cascade makes it 0; a cluster's deregistration checks it
 * inside its own transaction after deleting the hosts).
 */
export async function orphanTenantCount(db: Queryable): Promise<number> {
  const res = await db.query<{ n: number }>(ORPHAN_TENANTS_SQL);
  return res.rows[0]?.n ?? 0;
}
