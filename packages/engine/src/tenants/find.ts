import type pg from 'pg';
import { quoteLiteral } from '@owui-sync/schema';
import { beginScoped, withClient, type DbScope, type Queryable } from '../db.ts';
import type { SyncSwitch } from './can-sync-now.ts';

/**
 * Finding one tenant: by name within a cluster (what every API handler and CLI command that takes a tenant name
 * starts with), whether a name is registered at all, and the cluster a name belongs to when it is not in the
 * caller's (an admin session sees every cluster, and an error that names the right one saves the operator a guess).
 */

/** A tenant's registration (sync_metadata.client_deployments) with the cluster of its host. */
export type Tenant = {
  deployment_id: string;
  client_name: string;
  host_id: string;
  schema_name: string;
  container_name: string | null;
  sqlite_path: string | null;
  sync_enabled: boolean;
  status: string;
  sync_interval: number;
  conflict_strategy: string;
  cluster_name: string;
};

const FIND_TENANT_SQL = `
  SELECT d.deployment_id::text AS deployment_id, d.client_name, d.host_id::text AS host_id, d.schema_name,
         d.container_name, d.sqlite_path, d.sync_enabled, d.status, d.sync_interval, d.conflict_strategy,
         h.cluster_name
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE d.client_name = $1::text AND h.cluster_name = $2::text`;

const TENANT_CLUSTER_SQL = `
  SELECT h.cluster_name
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE d.client_name = $1::text`;

const TENANT_IN_CLUSTER_EXISTS_SQL = `
  SELECT 1 FROM sync_metadata.client_deployments d JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE d.client_name = $1::text AND h.cluster_name = $2::text`;

const TENANT_EXISTS_SQL = 'SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = $1::text';

const TENANT_SOURCE_SQL =
  'SELECT deployment_id, sqlite_path FROM sync_metadata.client_deployments WHERE client_name = $1::text';

/**
 * Whether `name` is registered: in `cluster` when given (GET /api/v1/tenants/{name}/drills answers 404 otherwise),
 * else in any cluster the session sees (names are unique across clusters, so `syncctl client register` refuses a
 * name taken anywhere, and the demo registers its tenant only once). Cheaper than findTenant when the row itself is
 * not needed.
 */
export async function tenantExists(db: Queryable, name: string, cluster?: string): Promise<boolean> {
  const res =
    cluster === undefined
      ? await db.query(TENANT_EXISTS_SQL, [name])
      : await db.query(TENANT_IN_CLUSTER_EXISTS_SQL, [name, cluster]);
  return (res.rowCount ?? 0) > 0;
}

/** A tenant's registered SQLite file, as the admin commands that read it by name see it. */
export type TenantSource = { deployment_id: string; sqlite_path: string | null };

/**
 * The deployment id and registered SQLite path of `name` in any cluster the session sees, or undefined
 * (`syncctl client upgrade-schema` on the admin connection; the caller then checks the path as a sync would).
 */
export async function tenantSource(db: Queryable, name: string): Promise<TenantSource | undefined> {
  const res = await db.query<TenantSource>(TENANT_SOURCE_SQL, [name]);
  return res.rows[0];
}

/**
 * The tenant registered under `name` in `cluster`, or undefined. Row-level security applies: run it inside the
 * cluster's scope (a transaction opened with `{ cluster }`) or on an admin connection.
 */
export async function findTenant(db: Queryable, name: string, cluster: string): Promise<Tenant | undefined> {
  const res = await db.query<Tenant>(FIND_TENANT_SQL, [name, cluster]);
  return res.rows[0];
}

/**
 * The cluster whose host `name` is registered on, or null when no visible cluster has it. Used to tell an operator
 * who asked the wrong cluster where the tenant lives.
 */
export async function tenantClusterOf(db: Queryable, name: string): Promise<string | null> {
  const res = await db.query<{ cluster_name: string }>(TENANT_CLUSTER_SQL, [name]);
  return res.rows[0]?.cluster_name ?? null;
}

/**
 * The tenant's sync switch and status (what canSyncNow reads), or undefined when `name` is not registered within
 * `scope`. One round trip (BEGIN with the RLS scope, the SELECT and COMMIT as one simple-protocol query): every
 * sync job pays for this check, including the many that find nothing to do.
 */
export async function readSyncSwitch(pool: pg.Pool, name: string, scope: DbScope): Promise<SyncSwitch | undefined> {
  return withClient(pool, async (client) => {
    const sql =
      `${beginScoped(scope)}; ` +
      `SELECT sync_enabled, status FROM sync_metadata.client_deployments WHERE client_name = ${quoteLiteral(name)}; ` +
      'COMMIT';
    try {
      const results = (await client.query(sql)) as unknown as pg.QueryResult<SyncSwitch>[];
      return results[results.length - 2]?.rows[0];
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}
