import type pg from 'pg';
import { PgBoss } from 'pg-boss';
import { PGBOSS_SCHEMA, SYNC_QUEUE, quoteIdent } from '@owui-sync/schema';
import type { Queryable } from '../db.ts';

/**
 * The only SQL on pg-boss's own `job` table. Everything else reads and writes jobs through pg-boss's API (send,
 * insert, fetch, findJobs, complete). These three have no API to go through:
 *
 * - counts per state of one cluster's jobs: getQueueStats and getQueues count a whole queue, and several
 *   clusters may share one; a job belongs to a cluster through the deployment id in its data;
 * - the newest jobs of one cluster, filtered by state and tenant: findJobs returns a queue's jobs oldest first,
 *   matching one key or data object at a time;
 * - removing a deregistered tenant's queued jobs in every cluster's pg-boss schema at once, on the admin
 *   connection (deleteJob needs a started boss per schema and the jobs' ids).
 *
 * Only the schema name is interpolated, through quoteIdent.
 */

/** Where the job table is read: a started boss (its own connections) or a service-role pool. */
export type JobTableSource = PgBoss | pg.Pool;

async function run<R>(source: JobTableSource, text: string, values: unknown[]): Promise<R[]> {
  if (source instanceof PgBoss) return (await source.getDb().executeSql(text, values)).rows as R[];
  return (await source.query(text, values)).rows as R[];
}

export type JobStateCountRow = { name: string; state: string; n: number; oldest: number | null };

const countSql = (schema: string) => `
  SELECT j.name, j.state::text AS state, count(*)::int AS n,
         EXTRACT(EPOCH FROM now() - min(j.created_on)
           FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now()))::float8 AS oldest
    FROM ${quoteIdent(schema)}.job j
   WHERE j.name = ANY($1::text[])
     AND ($2::text[] IS NULL OR j.data->>'deployment_id' = ANY($2::text[]))
   GROUP BY j.name, j.state`;

/**
 * Jobs per queue and state, with the age in seconds of the oldest job ready to run, in `schema`; only the jobs of
 * the given deployments unless `deploymentIds` is null.
 */
export async function countJobsByState(
  source: JobTableSource,
  schema: string,
  queues: readonly string[],
  deploymentIds: readonly string[] | null,
): Promise<JobStateCountRow[]> {
  return run<JobStateCountRow>(source, countSql(schema), [queues, deploymentIds]);
}

export type JobRow = {
  id: string;
  name: string;
  state: string;
  data: Record<string, unknown> | null;
  retry_count: number;
  retry_limit: number;
  created_on: Date;
  start_after: Date;
  started_on: Date | null;
  completed_on: Date | null;
};

export type ListJobsFilter = {
  readonly queues: readonly string[];
  /** The cluster's tenants (see clusterDeploymentIds). */
  readonly deploymentIds: readonly string[];
  readonly state?: string | undefined;
  readonly clientName?: string | undefined;
  readonly limit: number;
};

const listSql = (schema: string) => `
  SELECT id::text AS id, name, state::text AS state, data, retry_count, retry_limit, created_on, start_after,
         started_on, completed_on
    FROM ${quoteIdent(schema)}.job
   WHERE name = ANY($1::text[]) AND data->>'deployment_id' = ANY($2::text[])
     AND ($3::text IS NULL OR state::text = $3::text)
     AND ($4::text IS NULL OR data->>'client_name' = $4::text)
   ORDER BY created_on DESC, id DESC
   LIMIT $5::int`;

/** The newest jobs of the given deployments in `schema`, newest first. */
export async function listJobs(source: JobTableSource, schema: string, filter: ListJobsFilter): Promise<JobRow[]> {
  return run<JobRow>(source, listSql(schema), [
    filter.queues,
    filter.deploymentIds,
    filter.state ?? null,
    filter.clientName ?? null,
    filter.limit,
  ]);
}

/**
 * Deletes the queued (not yet running) sync jobs of tenant `name` in the shared pg-boss schema and in every cluster
 * role's own one; they would only fail and retry once the tenant is gone. Admin connection (older installs have no
 * cluster roles table). Returns how many were deleted.
 */
export async function deleteQueuedSyncJobs(db: Queryable, name: string): Promise<number> {
  const hasRoles = await db.query<{ ok: boolean }>("SELECT to_regclass('sync_admin.cluster_roles') IS NOT NULL AS ok");
  const schemas = await db.query<{ schema: string }>(
    `SELECT s.schema FROM (SELECT $1::text AS schema ${
      hasRoles.rows[0]?.ok ? 'UNION SELECT queue_schema::text FROM sync_admin.cluster_roles' : ''
    }) s
      WHERE to_regclass(quote_ident(s.schema) || '.job') IS NOT NULL`,
    [PGBOSS_SCHEMA],
  );
  let removed = 0;
  for (const { schema } of schemas.rows) {
    const r = await db.query(
      `DELETE FROM ${quoteIdent(schema)}.job WHERE name = $1::text AND singleton_key = $2::text AND state IN ('created', 'retry')`,
      [SYNC_QUEUE, name],
    );
    removed += r.rowCount ?? 0;
  }
  return removed;
}
