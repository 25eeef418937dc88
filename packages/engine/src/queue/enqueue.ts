import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { PgBoss, Db as BossDb } from 'pg-boss';
import {
  DRILL_QUEUE,
  SYNC_QUEUE,
  syncJobPayloadSchema,
  type DrillJobPayload,
  type SyncJobPayload,
} from '@owui-sync/schema';
import { AppError, ERROR_CODES, NotFoundError, errorMessage } from '../errors.ts';

/**
 * Putting jobs on the queues: one sync of a tenant asked for by hand (API, CLI), and the scheduler's batches of due
 * syncs and restore drills, inserted inside its fenced transaction. Every job carries its cluster's priority and
 * the tenant's name as singleton key.
 */

/** Queue trouble as an error the API answers with 503 (the queue, not the request, is at fault). */
export class QueueUnavailableError extends AppError {
  constructor(message: string, cause?: unknown) {
    super(ERROR_CODES.database, `the job queue is unavailable: ${message}`, { cause });
  }
}

/**
 * Jobs of different clusters sharing one database go through the same queue; each cluster's jobs carry its own
 * pg-boss priority and its workers fetch only that priority, so a worker never takes a tenant of another cluster
 * (whose SQLite files live elsewhere). A stable hash of the cluster name, 1 … 2^30.
 */
export function clusterPriority(cluster: string): number {
  return (createHash('sha256').update(cluster).digest().readUInt32BE(0) & 0x3fffffff) + 1;
}

/** Wraps a client that is inside a transaction as a pg-boss executor (`db` option of send/fetch/complete). */
export function bossExecutor(client: Pick<pg.ClientBase, 'query'>): BossDb {
  return {
    executeSql: async (text: string, values?: unknown[]) => {
      const result = await client.query(text, values as unknown[]);
      return { rows: result.rows };
    },
  };
}

export type EnqueueResult = {
  /** The new job's id, or the already queued job's id when coalesced (null only if it could not be read back). */
  readonly jobId: string | null;
  /** True when a job for the tenant was already queued; the request merged into it. */
  readonly coalesced: boolean;
  /** When the job (or the one it merged into) was queued, ISO 8601. */
  readonly queuedAt: string;
};

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

/**
 * Puts a sync job back on the queue, to start in `delaySeconds`, with its payload, fairness group and cluster
 * priority: a job whose group was full when it started (SyncGroupFullError) waits its turn this way instead of
 * failing or spending a retry. Returns the new job's id, or null when the tenant already has a job queued, which
 * then does the work (stately policy, as for any coalesced request).
 */
export async function requeueSync(
  boss: PgBoss,
  payload: SyncJobPayload,
  opts: {
    readonly cluster: string;
    readonly group?: { readonly id: string; readonly tier: string } | undefined;
    readonly delaySeconds: number;
  },
): Promise<string | null> {
  return boss.send(SYNC_QUEUE, syncJobPayloadSchema.parse(payload), {
    singletonKey: payload.client_name,
    priority: clusterPriority(opts.cluster),
    startAfter: Math.max(1, Math.round(opts.delaySeconds)),
    ...(opts.group ? { group: opts.group } : {}),
  });
}

/** One due tenant of a scheduler pass, with the fairness group its job goes in (none for most). */
export type ScheduledSync = {
  readonly deployment_id: string;
  readonly client_name: string;
  readonly group?: { readonly id: string; readonly tier: string } | undefined;
};

/** A scheduler pass's jobs of one queue, one per tenant, through the pass's fenced transaction `client`. */
async function insertScheduledJobs<T extends { readonly client_name: string }, P extends object>(
  boss: PgBoss,
  client: Pick<pg.ClientBase, 'query'>,
  queue: string,
  tenants: readonly T[],
  opts: { readonly cluster: string; readonly epoch: number },
  build: (tenant: T, common: { readonly requested_at: string; readonly epoch: number }) => P,
  group: (tenant: T) => { readonly group?: { readonly id: string; readonly tier: string } } = () => ({}),
): Promise<number> {
  if (tenants.length === 0) return 0;
  const common = { requested_at: new Date().toISOString(), epoch: opts.epoch };
  const priority = clusterPriority(opts.cluster);
  const jobs = tenants.map((t) => ({
    id: randomUUID(),
    data: build(t, common),
    singletonKey: t.client_name,
    priority,
    ...group(t),
  }));
  const ids = await boss.insert(queue, jobs, { db: bossExecutor(client), returnId: true });
  return ids?.length ?? 0;
}

/**
 * Inserts the scheduler's sync jobs of one pass through `client` (the pass's fenced transaction), one per tenant;
 * a tenant that already has one queued coalesces with it (stately policy). Returns how many were inserted.
 */
export function enqueueScheduledSyncs(
  boss: PgBoss,
  client: Pick<pg.ClientBase, 'query'>,
  tenants: readonly ScheduledSync[],
  opts: { readonly cluster: string; readonly epoch: number },
): Promise<number> {
  return insertScheduledJobs(
    boss,
    client,
    SYNC_QUEUE,
    tenants,
    opts,
    (t, common): SyncJobPayload => ({
      deployment_id: t.deployment_id,
      client_name: t.client_name,
      full_sync: false,
      triggered_by: 'scheduler',
      ...common,
    }),
    (t) => (t.group ? { group: t.group } : {}),
  );
}

/** The restore drill jobs of one scheduler pass, like enqueueScheduledSyncs. Returns how many were inserted. */
export function enqueueScheduledDrills(
  boss: PgBoss,
  client: Pick<pg.ClientBase, 'query'>,
  tenants: readonly { readonly deployment_id: string; readonly client_name: string }[],
  opts: { readonly cluster: string; readonly epoch: number },
): Promise<number> {
  return insertScheduledJobs(boss, client, DRILL_QUEUE, tenants, opts, (t, common): DrillJobPayload => ({
    deployment_id: t.deployment_id,
    client_name: t.client_name,
    triggered_by: 'scheduler',
    ...common,
  }));
}
