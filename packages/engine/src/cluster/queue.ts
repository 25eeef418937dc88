import { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { PGBOSS_SCHEMA, SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import { ConfigError, errorMessage } from '../errors.ts';
import { bossSettings, rememberBossSettings } from '../queue/boss-settings.ts';

// Enqueueing and queue counts live in ../queue/; these names stay importable from here.
export {
  bossExecutor,
  clusterPriority,
  enqueueSync,
  QueueUnavailableError,
  type EnqueueOptions,
  type EnqueueResult,
} from '../queue/enqueue.ts';
export { JOB_STATES, queueCounts, type JobState, type QueueCount } from '../queue/counts.ts';
export { bossSettings, type BossSettings } from '../queue/boss-settings.ts';

/**
 * Access to the pg-boss sync queue. pg-boss runs as the restricted service role: its schema and queues are created
 * by the install step, so nothing here needs CREATE (migrate and createSchema are off). Through a transaction-mode
 * pooler it never LISTENs (polling only); on a direct connection it may, and polling stays as the floor.
 */

export type CreateBossOptions = {
  /** Service-role connection string. */
  readonly connectionString: string;
  /** The connection goes through a transaction-mode pooler (pgbouncer): no LISTEN/NOTIFY, no session state. */
  readonly pooled?: boolean;
  readonly logger?: Logger;
  /** How often an idle worker polls for jobs (default 0.5 s, pg-boss's minimum): the trigger → start latency. */
  readonly pollingIntervalSeconds?: number;
  /** Pool size of pg-boss's own connections (default 4). */
  readonly max?: number;
  /**
   * How often this instance expires stale jobs and fails jobs whose worker stopped heart-beating (default 10 s;
   * every process supervises, pg-boss coordinates them so a queue is checked once per interval).
   */
  readonly superviseIntervalSeconds?: number;
  /** Name in pg-boss's instance registry (e.g. node-a, worker-1). */
  readonly instanceName?: string;
  readonly applicationName?: string;
  /** How often pg-boss re-reads the queues' settings (default 60 s). */
  readonly queueCacheIntervalSeconds?: number;
  /** pg-boss schema (default pgboss; a cluster role has its own, see resolveQueueSchema). */
  readonly schema?: string;
};

const lastErrors = new WeakMap<PgBoss, { message: string; at: number }>();

/** The boss's most recent error event if it happened within `withinSeconds`, else null. */
export function recentQueueError(boss: PgBoss, withinSeconds: number): string | null {
  const last = lastErrors.get(boss);
  return last && Date.now() - last.at <= withinSeconds * 1000 ? last.message : null;
}

/**
 * Why the sync queues cannot be used right now, or null when they can: both queues must exist in the boss's
 * schema, and the boss must not have failed recently (within `withinSeconds`).
 */
export async function queueProblem(boss: PgBoss, withinSeconds = 30): Promise<string | null> {
  const { schema } = bossSettings(boss);
  try {
    const queues = await boss.getQueues([SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE]);
    const present = new Set(queues.map((q) => q.name));
    const missing = [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE].filter((q) => !present.has(q));
    if (missing.length) {
      const fix = schema === PGBOSS_SCHEMA ? 'syncctl init' : 'syncctl cluster add-role --cluster CLUSTER';
      return `queue ${missing.join(', ')} does not exist in schema ${schema}; run ${fix} (admin) to recreate it`;
    }
  } catch (error) {
    return `job queue cannot be read: ${errorMessage(error)}`;
  }
  const recent = recentQueueError(boss, withinSeconds);
  return recent ? `job queue error: ${recent}` : null;
}

/** Who the connection logged in as, and what that role may reach (sync_metadata.caller_identity()). */
export type CallerIdentity = {
  readonly role: string;
  /** The cluster a cluster role is confined to; null for the shared role and for unmapped roles. */
  readonly cluster: string | null;
  /** The shared service role of a single-cluster install (scope follows the session settings). */
  readonly unrestricted: boolean;
  /** Its pg-boss schema, null when unmapped. */
  readonly queueSchema: string | null;
};

type Queryable = { query: (text: string) => Promise<{ rows: unknown[] }> };

/** The caller's identity, or null on a database whose install predates cluster roles. */
export async function callerIdentity(db: Queryable): Promise<CallerIdentity | null> {
  try {
    const res = await db.query(
      'SELECT role_name::text AS role, cluster_name AS cluster, unrestricted, queue_schema::text AS queue_schema FROM sync_metadata.caller_identity()',
    );
    const row = res.rows[0] as {
      role: string;
      cluster: string | null;
      unrestricted: boolean;
      queue_schema: string | null;
    };
    return { role: row.role, cluster: row.cluster, unrestricted: row.unrestricted, queueSchema: row.queue_schema };
  } catch (error) {
    if ((error as { code?: string }).code === '42883') return null;
    throw error;
  }
}

/**
 * The pg-boss schema a process of `cluster` uses, checked against the role it logs in as: the shared service role
 * uses pgboss; a cluster role its own schema, and only for its own cluster. A role that belongs to no cluster, or
 * to another one, is a configuration error (it would see nothing).
 */
export async function resolveQueueSchema(db: Queryable, cluster: string): Promise<string> {
  return queueSchemaOf(await callerIdentity(db), cluster);
}

/** resolveQueueSchema for an identity already read. */
export function queueSchemaOf(identity: CallerIdentity | null, cluster: string): string {
  if (identity === null || identity.unrestricted) return PGBOSS_SCHEMA;
  if (identity.cluster === null || identity.queueSchema === null) {
    throw new ConfigError([
      `DATABASE_URL logs in as role "${identity.role}", which belongs to no cluster of this database: ` +
        `create the cluster's role with syncctl cluster add-role --cluster ${cluster} (admin) and use its credentials`,
    ]);
  }
  if (identity.cluster !== cluster) {
    throw new ConfigError([
      `DATABASE_URL logs in as role "${identity.role}" of cluster "${identity.cluster}", but CLUSTER_NAME is ` +
        `"${cluster}": a cluster's role reaches only its own cluster; set CLUSTER_NAME=${identity.cluster} or use ` +
        `the credentials of cluster "${cluster}"`,
    ]);
  }
  return identity.queueSchema;
}

/**
 * Creates (does not start) a pg-boss instance for the service role: `migrate: false`, `createSchema: false`, no
 * cron scheduling, no index rebuilds (the service does not own the indexes), LISTEN/NOTIFY only without a pooler.
 * Its `error` events are logged, never thrown, so a database restart cannot crash the process. Call
 * `await boss.start()` and, at shutdown, `await boss.stop()`.
 */
export function createBoss(opts: CreateBossOptions): PgBoss {
  const pooled = opts.pooled ?? false;
  const pollingIntervalSeconds = Math.max(0.5, opts.pollingIntervalSeconds ?? 0.5);
  const schema = opts.schema ?? PGBOSS_SCHEMA;
  const boss = new PgBoss({
    connectionString: opts.connectionString,
    schema,
    application_name: opts.applicationName ?? 'owui-sync-queue',
    max: opts.max ?? 4,
    migrate: false,
    createSchema: false,
    schedule: false,
    supervise: true,
    superviseIntervalSeconds: opts.superviseIntervalSeconds ?? 10,
    monitorIntervalSeconds: opts.superviseIntervalSeconds ?? 10,
    queueCacheIntervalSeconds: opts.queueCacheIntervalSeconds ?? 60,
    reindex: false,
    useListenNotify: !pooled,
    registerInstance: true,
    ...(opts.instanceName ? { instanceName: opts.instanceName } : {}),
    connectionTimeoutMillis: 10_000,
  });
  // A failing queue (e.g. deleted) makes every poll fail: each distinct message is logged once per supervise
  // interval, with how often it recurred meanwhile, and kept for /health.
  const everyMs = (opts.superviseIntervalSeconds ?? 10) * 1000;
  const seen = new Map<string, { at: number; repeats: number }>();
  boss.on('error', (error) => {
    const message = errorMessage(error);
    const now = Date.now();
    lastErrors.set(boss, { message, at: now });
    const last = seen.get(message);
    if (last && now - last.at < everyMs) {
      last.repeats += 1;
      return;
    }
    const repeats = last?.repeats ?? 0;
    seen.set(message, { at: now, repeats: 0 });
    if (seen.size > 100) seen.delete(seen.keys().next().value as string);
    opts.logger?.warn(
      { err: error, ...(repeats ? { repeats } : {}) },
      `job queue: ${message}${repeats ? ` (${repeats} more times since the last report)` : ''}`,
    );
  });
  boss.on('warning', (warning) => {
    // Expected behind a pooler: LISTEN is not available, polling carries on.
    const level = /listen/i.test(warning.message) && pooled ? 'debug' : 'info';
    opts.logger?.[level]({ data: warning.data }, `job queue: ${warning.message}`);
  });
  rememberBossSettings(boss, { pollingIntervalSeconds, pooled, schema });
  return boss;
}
