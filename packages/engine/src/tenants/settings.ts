import type { Queryable } from '../db.ts';

/**
 * A tenant's settings: its whole registration row as the state cache serves it (`deployment.<client>`, see
 * ../state/state-manager.ts), the one statement that writes the settings an operator changes (interval, conflict
 * strategy and config, container name), used alike by PUT /api/v1/state/deployment.<client> and `syncctl client
 * interval|conflicts-config`, and the rows' updated_at that tells the cache a row moved on. Starting and pausing
 * is ./sync-switch.ts.
 */

/** A tenant's row of sync_metadata.client_deployments, as the state cache reads it. */
export type TenantRow = {
  deployment_id: string;
  client_name: string;
  status: string;
  sync_enabled: boolean;
  sync_interval: number;
  last_sync_at: Date | null;
  last_sync_status: string | null;
  last_full_sync_at: Date | null;
  next_sync_at: Date | null;
  conflict_strategy: string;
  conflict_config: unknown;
  container_name: string | null;
  sqlite_path: string | null;
  schema_name: string;
  openwebui_version: string | null;
  updated_at: Date;
};

const TENANT_ROW_COLUMNS = `d.deployment_id, d.client_name, d.status, d.sync_enabled, d.sync_interval, d.last_sync_at,
         d.last_sync_status, d.last_full_sync_at, d.next_sync_at, d.conflict_strategy, d.conflict_config,
         d.container_name, d.sqlite_path, d.schema_name, d.openwebui_version, d.updated_at`;

const TENANT_ROW_SQL = `
  SELECT ${TENANT_ROW_COLUMNS}
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE d.client_name = $1::text AND h.cluster_name = $2::text`;

const TENANT_ROW_FOR_UPDATE_SQL = `${TENANT_ROW_SQL} FOR UPDATE OF d`;

/**
 * The row of the tenant registered under `name` in `cluster`, or undefined. With `forUpdate` the row stays locked
 * until the caller's transaction ends (read, then write its settings).
 */
export async function readTenantRow(
  db: Queryable,
  name: string,
  cluster: string,
  opts: { readonly forUpdate?: boolean } = {},
): Promise<TenantRow | undefined> {
  const res = await db.query<TenantRow>(opts.forUpdate ? TENANT_ROW_FOR_UPDATE_SQL : TENANT_ROW_SQL, [name, cluster]);
  return res.rows[0];
}

/** A change to a tenant's settings: each field left undefined keeps its value. */
export type TenantSettingsPatch = {
  readonly sync_interval?: number | undefined;
  readonly conflict_strategy?: string | undefined;
  /** null clears it. */
  readonly conflict_config?: unknown;
  /** null clears it. */
  readonly container_name?: string | null | undefined;
  /**
   * Clear next_sync_at: it was computed from the old interval, so the tenant becomes due one new interval after its
   * last sync and the leader spreads it again on its next pass. Callers set it when the interval changes.
   */
  readonly clearNextSync?: boolean | undefined;
};

const UPDATE_SETTINGS_SQL = `
  UPDATE sync_metadata.client_deployments d
     SET sync_interval = coalesce($2::int, d.sync_interval),
         conflict_strategy = coalesce($3::text, d.conflict_strategy),
         conflict_config = CASE WHEN $4::boolean THEN $5::jsonb ELSE d.conflict_config END,
         container_name = CASE WHEN $6::boolean THEN $7::text ELSE d.container_name END,
         next_sync_at = CASE WHEN $8::boolean THEN NULL ELSE d.next_sync_at END,
         updated_at = now()
   WHERE d.deployment_id = $1::uuid
  RETURNING ${TENANT_ROW_COLUMNS}`;

/**
 * Writes `patch` to the tenant's row (always bumping updated_at, so every state cache drops its copy on its next
 * poll) and returns the row as written, or undefined when no row has that id. Run it in the caller's transaction,
 * within the cluster's scope or on an admin connection.
 */
export async function updateTenantSettings(
  db: Queryable,
  deploymentId: string,
  patch: TenantSettingsPatch,
): Promise<TenantRow | undefined> {
  const res = await db.query<TenantRow>(UPDATE_SETTINGS_SQL, [
    deploymentId,
    patch.sync_interval ?? null,
    patch.conflict_strategy ?? null,
    patch.conflict_config !== undefined,
    patch.conflict_config === undefined || patch.conflict_config === null
      ? null
      : JSON.stringify(patch.conflict_config),
    patch.container_name !== undefined,
    patch.container_name ?? null,
    patch.clearNextSync ?? false,
  ]);
  return res.rows[0];
}

const ROW_VERSIONS_SQL = `
  SELECT d.client_name, d.updated_at
    FROM sync_metadata.client_deployments d
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text AND d.client_name = ANY($2::text[])`;

/** updated_at of those of `names` registered in `cluster` (a name missing from the answer is not registered). */
export async function tenantRowVersions(
  db: Queryable,
  cluster: string,
  names: readonly string[],
): Promise<{ client_name: string; updated_at: Date }[]> {
  const res = await db.query<{ client_name: string; updated_at: Date }>(ROW_VERSIONS_SQL, [cluster, names]);
  return res.rows;
}
