import { createHash } from 'node:crypto';
import type pg from 'pg';
import { PgBoss, type Db as BossDb } from 'pg-boss';
import type { Logger } from 'pino';
import {
  PGBOSS_SCHEMA,
  SYNC_DEAD_LETTER_QUEUE,
  SYNC_QUEUE,
  quoteIdent,
  syncJobPayloadSchema,
  type SyncJobPayload,
} from '@owui-sync/schema';
import { AppError, ConfigError, ERROR_CODES, NotFoundError, errorMessage } from '../errors.ts';

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

/** Settings createBoss decided that workers need later (polling interval, schema). */
export type BossSettings = {
  readonly pollingIntervalSeconds: number;
  readonly pooled: boolean;
  readonly schema: string;
};

const settings = new WeakMap<PgBoss, BossSettings>();
const lastErrors = new WeakMap<PgBoss, { message: string; at: number }>();

/** The boss's most recent error event if it happened within `withinSeconds`, else null. */
export function recentQueueError(boss: PgBoss, withinSeconds: number): string | null {
  const last = lastErrors.get(boss);
  return last && Date.now() - last.at <= withinSeconds * 1000 ? last.message : null;
}

/** Queue trouble as an error the API answers with 503 (the queue, not the request, is at fault). */
export class QueueUnavailableError extends AppError {
  constructor(message: string, cause?: unknown) {
    super(ERROR_CODES.database, `the job queue is unavailable: ${message}`, { cause });
  }
}

/**
 * Why the sync queues cannot be used right now, or null when they can: both queues must exist in the boss's
 * schema, and the boss must not have failed recently (within `withinSeconds`).
 */
export async function queueProblem(boss: PgBoss, withinSeconds = 30): Promise<string | null> {
  const { schema } = bossSettings(boss);
  try {
    const res = await boss
      .getDb()
      .executeSql(`SELECT name FROM ${quoteIdent(schema)}.queue WHERE name = ANY($1::text[])`, [
        [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE],
      ]);
    const present = new Set((res.rows as { name: string }[]).map((r) => r.name));
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

/** The polling interval and pooling mode a boss was created with (defaults for a boss made elsewhere). */
export function bossSettings(boss: PgBoss): BossSettings {
  return settings.get(boss) ?? { pollingIntervalSeconds: 2, pooled: false, schema: PGBOSS_SCHEMA };
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
  settings.set(boss, { pollingIntervalSeconds, pooled, schema });
  return boss;
}

export type EnqueueResult = {
  /** The new job's id, or the already queued job's id when coalesced (null only if it could not be read back). */
  readonly jobId: string | null;
  /** True when a job for the tenant was already queued; the request merged into it. */
  readonly coalesced: boolean;
  /** When the job (or the one it merged into) was queued, ISO 8601. */
  readonly queuedAt: string;
};

/**
 * Jobs of different clusters sharing one database go through the same queue; each cluster's jobs carry its own
 * pg-boss priority and its workers fetch only that priority, so a worker never takes a tenant of another cluster
 * (whose SQLite files live elsewhere). A stable hash of the cluster name, 1 … 2^30.
 */
export function clusterPriority(cluster: string): number {
  return (createHash('sha256').update(cluster).digest().readUInt32BE(0) & 0x3fffffff) + 1;
}

const DEPLOYMENT_CLUSTER_SQL = 'SELECT sync_metadata.deployment_cluster($1::uuid) AS cluster';

export type EnqueueOptions = {
  /** The tenant's cluster, when the caller knows it (otherwise it is looked up from the deployment). */
  readonly cluster?: string;
  /**
   * Run the insert through this executor instead of pg-boss's pool, e.g. a transaction that also checked the
   * leader's lease (see fencedTransaction), so the job exists only if the check held at commit.
   */
  readonly db?: BossDb;
};

/** Wraps a client that is inside a transaction as a pg-boss executor (`db` option of send/fetch/complete). */
export function bossExecutor(client: Pick<pg.ClientBase, 'query'>): BossDb {
  return {
    executeSql: async (text: string, values?: unknown[]) => {
      const result = await client.query(text, values as unknown[]);
      return { rows: result.rows };
    },
  };
}

/**
 * Enqueues one sync of a tenant. The queue's `stately` policy with singletonKey = client_name keeps at most one
 * job queued and one running per tenant: a request that finds one already queued coalesces with it (its id is
 * returned, `coalesced: true`). A full-sync request merging into a queued incremental one does not upgrade it; the
 * caller can tell from `coalesced`.
 */
export async function enqueueSync(
  boss: PgBoss,
  payload: SyncJobPayload,
  options: EnqueueOptions = {},
): Promise<EnqueueResult> {
  const data = syncJobPayloadSchema.parse({
    ...payload,
    requested_at: payload.requested_at ?? new Date().toISOString(),
  });
  const key = data.client_name;
  let cluster = options.cluster;
  if (!cluster) {
    const db = options.db ?? boss.getDb();
    const res = await db.executeSql(DEPLOYMENT_CLUSTER_SQL, [data.deployment_id]);
    cluster = (res.rows[0] as { cluster: string | null } | undefined)?.cluster ?? undefined;
    if (!cluster) {
      throw new NotFoundError(`tenant "${data.client_name}" is not registered (deployment ${data.deployment_id})`);
    }
  }
  const priority = clusterPriority(cluster);
  try {
    return await sendCoalescing(boss, data, key, priority, options);
  } catch (error) {
    if (error instanceof AppError) throw error;
    const code = (error as { code?: unknown }).code;
    // pg-boss's own errors (PGBOSS_…, e.g. a deleted queue) and refused access to its schema: the queue is at fault.
    if ((typeof code === 'string' && code.startsWith('PGBOSS')) || code === '42501' || code === '42P01') {
      throw new QueueUnavailableError(errorMessage(error), error);
    }
    throw error;
  }
}

async function sendCoalescing(
  boss: PgBoss,
  data: SyncJobPayload,
  key: string,
  priority: number,
  options: EnqueueOptions,
): Promise<EnqueueResult> {
  // A queued job can start between a refused insert and the look-up; then the next insert succeeds.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const jobId = await boss.send(SYNC_QUEUE, data, {
      singletonKey: key,
      priority,
      ...(options.db ? { db: options.db } : {}),
    });
    if (jobId) return { jobId, coalesced: false, queuedAt: data.requested_at ?? new Date().toISOString() };
    const queued = await boss.findJobs<SyncJobPayload>(SYNC_QUEUE, {
      key,
      queued: true,
      ...(options.db ? { db: options.db } : {}),
    });
    const existing = queued[0];
    if (existing) return { jobId: existing.id, coalesced: true, queuedAt: existing.createdOn.toISOString() };
  }
  return { jobId: null, coalesced: true, queuedAt: new Date().toISOString() };
}

export const JOB_STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type QueueCount = {
  readonly queue: string;
  /** Jobs per pg-boss state (created, retry, active, completed, cancelled, failed), zeros included. */
  readonly states: Record<string, number>;
  /** Age of the oldest job ready to run (created/retry, start time reached), or null when none waits. */
  readonly oldestWaitingSeconds: number | null;
};

const countsSql = (schema: string) => `
  SELECT j.name, j.state::text AS state, count(*)::int AS n,
         EXTRACT(EPOCH FROM now() - min(j.created_on)
           FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now()))::float8 AS oldest
    FROM ${quoteIdent(schema)}.job j
   WHERE j.name = ANY($1::text[])
   GROUP BY j.name, j.state`;

/**
 * Job counts of the sync queue and its dead-letter queue, read straight from pg-boss's table (exact, not the
 * cached statistics), through a started boss (its schema) or a service-role pool (the pgboss schema unless given).
 */
export async function queueCounts(source: PgBoss | pg.Pool, schema?: string): Promise<QueueCount[]> {
  const queues = [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE];
  const rows =
    source instanceof PgBoss
      ? (await source.getDb().executeSql(countsSql(schema ?? bossSettings(source).schema), [queues])).rows
      : (await source.query(countsSql(schema ?? PGBOSS_SCHEMA), [queues])).rows;
  return queues.map((queue) => {
    const states: Record<string, number> = Object.fromEntries(JOB_STATES.map((s) => [s, 0]));
    let oldest: number | null = null;
    for (const row of rows as { name: string; state: string; n: number; oldest: number | null }[]) {
      if (row.name !== queue) continue;
      states[row.state] = row.n;
      if (row.oldest !== null && (oldest === null || row.oldest > oldest)) oldest = row.oldest;
    }
    return { queue, states, oldestWaitingSeconds: oldest === null ? null : Math.max(0, Math.round(oldest)) };
  });
}
