import type { Queryable } from '../db.ts';

/**
 * A cluster's conflict log (sync_metadata.conflict_log): the listing GET /api/v1/conflicts and `syncctl conflicts`
 * show, and the look-up of one conflict that `syncctl conflicts resolve` makes before resolving it. Like the job
 * history (./job-history.ts) it decides which rows are the cluster's through the tenant's host, which is why it lives
 * with the tenants; detecting and resolving conflicts stays in ../sync/conflicts/.
 */

/** One conflict. The row versions (`source_data`, `target_data`, `resolved_data`) only with `withData`. */
export type ConflictLogRow = {
  log_id: string;
  client_id: string;
  table_name: string;
  row_key: unknown;
  conflict_type: string;
  source_data?: unknown;
  target_data?: unknown;
  resolution_strategy: string;
  resolution: string | null;
  resolved_data?: unknown;
  job_id: string | null;
  detected_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
};

export type ConflictLogFilter = {
  /** Only this tenant's conflicts (its name, which is the client_id its runs recorded). */
  readonly clientName?: string | undefined;
  /** false (default): unresolved only; true: resolved only; 'all': both. */
  readonly resolved?: boolean | 'all' | undefined;
  /** Only conflicts on this table. */
  readonly table?: string | undefined;
  /** At most this many, the newest. */
  readonly limit: number;
  /** Include both row versions and the resolved one (JSON documents, possibly large). Default true. */
  readonly withData?: boolean | undefined;
};

const listSql = (withData: boolean) => `
  SELECT c.log_id::text AS log_id, c.client_id, c.table_name, c.row_key, c.conflict_type,${
    withData ? ' c.source_data, c.target_data,' : ''
  }
         c.resolution_strategy, c.resolution,${withData ? ' c.resolved_data,' : ''} c.job_id::text AS job_id,
         c.detected_at, c.resolved_at, c.resolved_by
    FROM sync_metadata.conflict_log c
    JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text
     AND ($2::text IS NULL OR d.client_name = $2::text)
     AND ($3::text = 'all' OR ($3::text = 'true') = (c.resolved_at IS NOT NULL))
     AND ($4::text IS NULL OR c.table_name = $4::text)
   ORDER BY c.detected_at DESC, c.log_id DESC
   LIMIT $5::int`;

const LIST_WITH_DATA_SQL = listSql(true);
const LIST_SQL = listSql(false);

/** The cluster's conflicts, newest first (unresolved only unless `resolved` says otherwise). */
export async function listConflictLog(
  db: Queryable,
  cluster: string,
  filter: ConflictLogFilter,
): Promise<ConflictLogRow[]> {
  const res = await db.query<ConflictLogRow>(filter.withData === false ? LIST_SQL : LIST_WITH_DATA_SQL, [
    cluster,
    filter.clientName ?? null,
    String(filter.resolved ?? false),
    filter.table ?? null,
    filter.limit,
  ]);
  return res.rows;
}

/** Whose a conflict is and whether it is settled. */
export type ConflictOwner = { client_id: string; resolved_at: Date | null; resolution_strategy: string };

const CONFLICT_OWNER_SQL = `
  SELECT c.client_id, c.resolved_at, c.resolution_strategy
    FROM sync_metadata.conflict_log c
    JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE c.log_id = $1::bigint AND h.cluster_name = $2::text`;

/**
 * The conflict `logId` when it belongs to one of the cluster's tenants, else undefined: a resolution is only applied
 * inside the operator's cluster.
 */
export async function findConflict(db: Queryable, cluster: string, logId: number): Promise<ConflictOwner | undefined> {
  const res = await db.query<ConflictOwner>(CONFLICT_OWNER_SQL, [logId, cluster]);
  return res.rows[0];
}
