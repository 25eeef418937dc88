import type pg from 'pg';
import { PgBoss } from 'pg-boss';
import { PGBOSS_SCHEMA, SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import { withTransaction, type DbScope } from '../db.ts';
import { clusterDeploymentIds } from '../tenants/list.ts';
import { bossSettings, queueSchemaFor } from './boss-settings.ts';
import { countJobsByState, type JobTableSource } from './job-table.ts';

/**
 * Queue counts: jobs of the sync queue and its dead-letter queue per pg-boss state, and how long the oldest ready
 * job has waited. GET /metrics and GET /api/v1/queue both report them per cluster through clusterQueueCounts: a
 * shared pg-boss schema may hold the jobs of several clusters, and each node speaks for its own.
 */

export const JOB_STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type QueueCount = {
  readonly queue: string;
  /** Jobs per pg-boss state (created, retry, active, completed, cancelled, failed), zeros included. */
  readonly states: Record<string, number>;
  /** Age of the oldest job ready to run (created/retry, start time reached), or null when none waits. */
  readonly oldestWaitingSeconds: number | null;
};

export type QueueCountsOptions = {
  /** The pg-boss schema (default: the boss's, or pgboss when reading through a pool). */
  readonly schema?: string | undefined;
  /** Count only the jobs of these deployments (default: every job in the schema, whichever cluster it is for). */
  readonly deploymentIds?: readonly string[] | undefined;
};

/**
 * Exact job counts (read from pg-boss's table, not its cached statistics) of the sync queue and its dead-letter
 * queue, through a started boss or a service-role pool. `schema` may be given as a string for short.
 */
export async function queueCounts(
  source: JobTableSource,
  options: QueueCountsOptions | string = {},
): Promise<QueueCount[]> {
  const opts = typeof options === 'string' ? { schema: options } : options;
  const queues = [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE];
  const schema = opts.schema ?? (source instanceof PgBoss ? bossSettings(source).schema : PGBOSS_SCHEMA);
  const rows = await countJobsByState(source, schema, queues, opts.deploymentIds ?? null);
  return queues.map((queue) => {
    const states: Record<string, number> = Object.fromEntries(JOB_STATES.map((s) => [s, 0]));
    let oldest: number | null = null;
    for (const row of rows) {
      if (row.name !== queue) continue;
      states[row.state] = row.n;
      if (row.oldest !== null && (oldest === null || row.oldest > oldest)) oldest = row.oldest;
    }
    return { queue, states, oldestWaitingSeconds: oldest === null ? null : Math.max(0, Math.round(oldest)) };
  });
}

export type ClusterQueueCountsOptions = {
  /** Service-role pool: the cluster's tenants are read through it in the cluster's scope. */
  readonly pool: pg.Pool;
  /** The node's pg-boss, for its schema (a cluster role has its own; without a boss: pgboss). */
  readonly boss?: PgBoss | undefined;
  readonly cluster: string;
  /** Row-level-security scope of the tenants read (default: the cluster). */
  readonly scope?: DbScope;
  /** The cluster's deployment ids when the caller has read them already. */
  readonly deploymentIds?: readonly string[];
};

/**
 * Queue counts of one cluster's jobs: those of its tenants, in the node's pg-boss schema, read through `pool`.
 * GET /metrics and GET /api/v1/queue both answer with this.
 */
export async function clusterQueueCounts(opts: ClusterQueueCountsOptions): Promise<QueueCount[]> {
  const deploymentIds =
    opts.deploymentIds ??
    (await withTransaction(
      opts.pool,
      (c) => clusterDeploymentIds(c, opts.cluster),
      opts.scope ?? { cluster: opts.cluster },
    ));
  return queueCounts(opts.pool, { schema: queueSchemaFor(opts.boss), deploymentIds });
}
