import type { Queryable } from '../db.ts';

/**
 * Listing a cluster's tenants: the short form (ids, names, switch, last sync) that cluster-wide operations and
 * pg-boss look-ups need, and the status form (v_sync_status: lag, last job, unresolved conflicts, optionally the
 * latest restore drills) that `syncctl clients`, `syncctl client status` and GET /api/v1/tenants show.
 */

export type TenantSummary = {
  deployment_id: string;
  client_name: string;
  container_name: string | null;
  status: string;
  sync_enabled: boolean;
  last_sync_at: Date | null;
  last_sync_status: string | null;
};

export type ListTenantsFilter = {
  /** Only tenants whose sync switch is on (true) or off (false). */
  readonly syncEnabled?: boolean;
};

const LIST_TENANTS_SQL = `
  SELECT d.deployment_id::text AS deployment_id, d.client_name, d.container_name, d.status, d.sync_enabled,
         d.last_sync_at, d.last_sync_status
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text AND ($2::boolean IS NULL OR d.sync_enabled = $2::boolean)
   ORDER BY d.client_name`;

/** The cluster's tenants by name, optionally only those with sync enabled or disabled. */
export async function listTenants(
  db: Queryable,
  cluster: string,
  filter: ListTenantsFilter = {},
): Promise<TenantSummary[]> {
  const res = await db.query<TenantSummary>(LIST_TENANTS_SQL, [cluster, filter.syncEnabled ?? null]);
  return res.rows;
}

/** Deployment ids of the cluster's tenants (pg-boss jobs carry one in their data, see ../queue/job-table.ts). */
export async function clusterDeploymentIds(db: Queryable, cluster: string): Promise<string[]> {
  return (await listTenants(db, cluster)).map((t) => t.deployment_id);
}

/** One row of sync_metadata.v_sync_status, with the tenant's conflict strategy and next slot. */
export type TenantStatusRow = {
  deployment_id: string;
  client_name: string;
  schema_name: string;
  container_name: string | null;
  sqlite_path: string | null;
  cluster_name: string;
  hostname: string;
  sync_enabled: boolean;
  status: string;
  sync_interval: number;
  last_sync_at: Date | null;
  last_sync_status: string | null;
  lag_seconds: number | null;
  last_job_id: string | null;
  last_job_status: string | null;
  last_job_type: string | null;
  last_job_triggered_by: string | null;
  last_job_started_at: Date | null;
  last_job_duration_seconds: string | null;
  last_job_rows_synced: string | null;
  unresolved_conflicts: number;
  conflict_strategy: string;
  next_sync_at: Date | null;
};

/** The latest restore drill and the latest passed one (with `drills: true`). */
export type TenantDrillColumns = {
  last_drill_at: Date | null;
  last_drill_passed: boolean | null;
  last_drill_failure: string | null;
  last_passed_drill_at: Date | null;
};

export type TenantStatusFilter = {
  /** Only this tenant. */
  readonly clientName?: string;
  /** Add the latest restore drills (two index look-ups per tenant). */
  readonly drills?: boolean;
};

const statusSql = (drills: boolean) => `
  SELECT s.*, d.conflict_strategy, d.next_sync_at, s.unresolved_conflicts::int AS unresolved_conflicts${
    drills
      ? `,
         l.started_at AS last_drill_at, l.passed AS last_drill_passed, l.failure AS last_drill_failure,
         p.started_at AS last_passed_drill_at`
      : ''
  }
    FROM sync_metadata.v_sync_status s
    JOIN sync_metadata.client_deployments d ON d.deployment_id = s.deployment_id${
      drills
        ? `
    LEFT JOIN LATERAL (
      SELECT r.started_at, r.passed, r.failure FROM sync_state.restore_drills r
       WHERE r.deployment_id = s.deployment_id ORDER BY r.started_at DESC LIMIT 1) l ON true
    LEFT JOIN LATERAL (
      SELECT r.started_at FROM sync_state.restore_drills r
       WHERE r.deployment_id = s.deployment_id AND r.passed ORDER BY r.started_at DESC LIMIT 1) p ON true`
        : ''
    }
   WHERE s.cluster_name = $1::text AND ($2::text IS NULL OR s.client_name = $2::text)
   ORDER BY s.client_name`;

const STATUS_SQL = statusSql(false);
const STATUS_WITH_DRILLS_SQL = statusSql(true);

/** Status rows of the cluster's tenants (or of one), by name. */
export async function tenantStatuses(
  db: Queryable,
  cluster: string,
  filter: TenantStatusFilter & { readonly drills: true },
): Promise<(TenantStatusRow & TenantDrillColumns)[]>;
export async function tenantStatuses(
  db: Queryable,
  cluster: string,
  filter?: TenantStatusFilter,
): Promise<TenantStatusRow[]>;
export async function tenantStatuses(
  db: Queryable,
  cluster: string,
  filter: TenantStatusFilter = {},
): Promise<TenantStatusRow[]> {
  const res = await db.query<TenantStatusRow>(filter.drills ? STATUS_WITH_DRILLS_SQL : STATUS_SQL, [
    cluster,
    filter.clientName ?? null,
  ]);
  return res.rows;
}
