import type pg from 'pg';
import type { Job, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { SYNC_QUEUE, syncJobPayloadSchema, type SyncJobPayload } from '@owui-sync/schema';
import type { DbScope } from '../db.ts';
import { errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import type { RunTenantSyncOptions } from '../sync/run-options.ts';
import { bossSettings } from '../queue/boss-settings.ts';
import { clusterPriority, requeueSync } from '../queue/enqueue.ts';
import { canSyncNow, SYNC_REFUSALS, type SyncSwitch } from '../tenants/can-sync-now.ts';
import { SyncGroupFullError, type ClaimGroup } from '../tenants/claim.ts';
import { readSyncSwitch } from '../tenants/find.ts';
import { SYNC_GROUPS } from './scheduler.ts';

/**
 * Sync workers: pg-boss hands out one job at a time per slot (its fetch uses FOR UPDATE SKIP LOCKED, and the
 * queue's stately policy never hands out a tenant's job while another of the same tenant is active), the engine
 * runs the sync with the job's abort signal, and the outcome settles the job: success or conflict completes it,
 * a failed run throws so pg-boss retries it with backoff and, after the last retry, moves it to the dead-letter
 * queue. A job that stops heart-beating (its process died) is failed by pg-boss's monitor and retried elsewhere.
 * A job that starts while a retry of the same tenant waits takes that retry over (absorbWaitingRetries), so its
 * own retry always has a slot. A job of a capped fairness group is queued again, a couple of seconds later, when
 * its tenant's claim finds the group already at its cap (pg-boss's group count can let two workers past at once;
 * the claim's count is exact): it waits its turn without failing or spending a retry.
 */

/** Seconds a sync job whose fairness group was full waits before it is fetched again. */
export const GROUP_DEFER_SECONDS = 2;

/** The part of the engine's result the worker reads (see runTenantSync in ../sync/index.ts). */
export type SyncRunOutcome = {
  readonly jobId: string;
  readonly status: 'success' | 'failed' | 'conflict';
  readonly syncType: 'full' | 'incremental';
  readonly rowsSynced: number;
  readonly durationSeconds: number;
  readonly error?: string;
};

/** The engine's runTenantSync, injected so the worker does not load its module (a type-only import). */
export type RunTenantSync = (opts: RunTenantSyncOptions) => Promise<SyncRunOutcome>;

export type SyncWorkerOptions = {
  readonly boss: PgBoss;
  /** Service-role pool the engine uses. */
  readonly pool: pg.Pool;
  readonly runTenantSync: RunTenantSync;
  readonly cluster: string;
  readonly hostId: string;
  /** Shown in sync_jobs.worker_id (e.g. worker-1@host). */
  readonly workerId: string;
  /** Jobs this process runs at once (default 2). */
  readonly concurrency?: number;
  readonly pollingIntervalSeconds?: number;
  /** Lifetime of the engine's claim on a tenant while a sync runs (renewed while alive; a dead run's lapses). */
  readonly claimTtlSeconds?: number;
  /** Rows per transaction (BATCH_SIZE). */
  readonly batchSize?: number;
  /** Cluster-wide caps of the fairness groups' running jobs (see syncGroupConcurrency). */
  readonly groups?: SyncGroupLimits;
  readonly logger: Logger;
  readonly metrics?: SyncMetrics;
};

export type SyncWorker = {
  /** Jobs currently running in this process. */
  active(): number;
  /**
   * Stops taking jobs and waits up to `timeoutMs` (default 30 s) for running ones to finish; the rest are aborted
   * and handed back to the queue (retried by another process).
   */
  stop(options?: { timeoutMs?: number }): Promise<void>;
};

/** Most jobs of each fairness group running at once in the whole cluster (every worker must use the same). */
export type SyncGroupLimits = {
  /** Tenants with a large SQLite file (LARGE_TENANT_CONCURRENCY, default 1). */
  readonly large: number;
  /** Tenants whose last run failed (FAILING_TENANT_CONCURRENCY, default 1). */
  readonly failing: number;
};

/**
 * pg-boss's group concurrency for the sync queue: counted in the database over all workers of the cluster, so a
 * fleet with two 2 GB tenants and eight slots keeps at least seven slots for everyone else while both are due.
 * Jobs without a group (most tenants) are not limited.
 */
export function syncGroupConcurrency(limits: SyncGroupLimits): {
  default: number;
  tiers: Record<string, number>;
} {
  return {
    default: Math.min(limits.large, limits.failing),
    tiers: { [SYNC_GROUPS.large]: limits.large, [SYNC_GROUPS.failing]: limits.failing },
  };
}

/** The capped group of a job as its tenant's claim counts it, or undefined for an ungrouped job. */
function claimGroupOf(job: Job<unknown>, caps: ReturnType<typeof syncGroupConcurrency>): ClaimGroup | undefined {
  if (!job.groupId) return undefined;
  return { id: job.groupId, limit: caps.tiers[job.groupTier ?? ''] ?? caps.default };
}

/**
 * Queues a job whose group was full again, GROUP_DEFER_SECONDS later, with its group and the sync type it asked for
 * (`fullSync`, merged retries included); what the refused job is completed with.
 */
async function deferJob(
  opts: SyncWorkerOptions,
  job: Job<unknown>,
  payload: SyncJobPayload,
  fullSync: boolean,
  refusal: SyncGroupFullError,
): Promise<{ deferred: string; requeued: string | null }> {
  const requeued = await requeueSync(
    opts.boss,
    { ...payload, full_sync: fullSync },
    {
      cluster: opts.cluster,
      group: job.groupId ? { id: job.groupId, tier: job.groupTier ?? job.groupId } : undefined,
      delaySeconds: GROUP_DEFER_SECONDS,
    },
  );
  opts.metrics?.jobsDeferred.inc({ group: refusal.group });
  opts.logger.info(
    { client: payload.client_name, job: job.id, requeued, group: refusal.group, running: refusal.running },
    `deferred sync job: ${refusal.message}; queued again in ${GROUP_DEFER_SECONDS} s`,
  );
  return { deferred: refusal.message, requeued };
}

type TenantState = SyncSwitch | undefined;

/**
 * Why a job is skipped instead of run, or null to run it (canSyncNow; a job queued by hand was checked when it was
 * queued, so it runs as forced).
 */
function skipReason(payload: SyncJobPayload, state: TenantState): string | null {
  const refusal = canSyncNow(state, {
    clientName: payload.client_name,
    scheduled: payload.triggered_by === 'scheduler',
    force: true,
  });
  if (!refusal) return null;
  // To the worker a deregistered tenant is one that is not registered (the job's tenant is gone).
  return refusal.reason === SYNC_REFUSALS.deregistered
    ? `tenant "${payload.client_name}" is not registered`
    : refusal.message;
}

/**
 * The stately policy keeps one job per state and tenant: while a retry of an earlier failed or crashed run waits
 * out its backoff, another job of the tenant can start, and if that one fails too its retry has no slot: pg-boss
 * sends it to the dead-letter queue with none of its retries used. So the job that starts takes the waiting
 * retries over: they are completed as merged into it (the run does their work now, a full sync if any of them
 * asked for one), and its own failure or crash gets the retry slot. Returns whether a merged job wanted a full
 * sync.
 */
async function absorbWaitingRetries(
  boss: PgBoss,
  jobId: string,
  clientName: string,
  logger: Logger,
): Promise<{ fullSync: boolean }> {
  const waiting = (await boss.findJobs<unknown>(SYNC_QUEUE, { key: clientName, queued: true })).filter(
    (j) => j.state === 'retry' && j.id !== jobId,
  );
  if (waiting.length === 0) return { fullSync: false };
  const ids = waiting.map((j) => j.id);
  await boss.complete(SYNC_QUEUE, ids, { mergedInto: jobId }, { includeQueued: true });
  logger.info(
    { client: clientName, job: jobId, merged: ids },
    `sync job takes over the waiting retry of an earlier run of "${clientName}" (${ids.join(', ')})`,
  );
  return {
    fullSync: waiting.some((j) => syncJobPayloadSchema.safeParse(j.data).data?.full_sync === true),
  };
}

/** Starts consuming the sync queue (see the module comment). */
export async function startSyncWorker(opts: SyncWorkerOptions): Promise<SyncWorker> {
  const { boss, logger } = opts;
  const scope: DbScope = { hostId: opts.hostId, cluster: opts.cluster };
  const running = new Map<string, AbortController>();
  const pollingIntervalSeconds = opts.pollingIntervalSeconds ?? bossSettings(boss).pollingIntervalSeconds;
  // Only this cluster's jobs (see clusterPriority).
  const priority = clusterPriority(opts.cluster);
  const groupCaps = syncGroupConcurrency(opts.groups ?? { large: 1, failing: 1 });

  const handle = async (job: Job<unknown>) => {
    const parsed = syncJobPayloadSchema.safeParse(job.data);
    if (!parsed.success) {
      // Retrying cannot fix a malformed payload; record why and let it go to the dead-letter queue.
      throw new Error(`invalid sync job payload: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    }
    const payload = parsed.data;
    const state = await readSyncSwitch(opts.pool, payload.client_name, scope);
    const skip = skipReason(payload, state);
    if (skip) {
      logger.info({ client: payload.client_name, job: job.id }, `skipped sync job: ${skip}`);
      return { skipped: skip };
    }
    // A retry is itself the tenant's one waiting retry (one job per state and tenant): none other can wait, so
    // the look-up is skipped.
    const merged =
      job.retryCount > 0 ? { fullSync: false } : await absorbWaitingRetries(boss, job.id, payload.client_name, logger);
    const stopper = new AbortController();
    running.set(job.id, stopper);
    const group = claimGroupOf(job, groupCaps);
    const fullSync = payload.full_sync || merged.fullSync;
    try {
      let result: SyncRunOutcome;
      try {
        result = await opts.runTenantSync({
          pool: opts.pool,
          clientName: payload.client_name,
          scope,
          fullSync,
          triggeredBy: payload.triggered_by,
          queueJobId: job.id,
          workerId: opts.workerId,
          signal: AbortSignal.any([job.signal, stopper.signal]),
          logger: logger.child({ client: payload.client_name, job: job.id }),
          ...(opts.metrics ? { metrics: opts.metrics } : {}),
          ...(opts.claimTtlSeconds ? { claimTtlSeconds: opts.claimTtlSeconds } : {}),
          ...(opts.batchSize ? { batchSize: opts.batchSize } : {}),
          ...(group ? { group } : {}),
        });
      } catch (error) {
        if (error instanceof SyncGroupFullError) return await deferJob(opts, job, payload, fullSync, error);
        throw error;
      }
      if (result.status === 'failed') {
        throw new Error(result.error ?? `sync of "${payload.client_name}" failed`);
      }
      return {
        syncJobId: result.jobId,
        status: result.status,
        syncType: result.syncType,
        rowsSynced: result.rowsSynced,
        durationSeconds: result.durationSeconds,
      };
    } finally {
      running.delete(job.id);
    }
  };

  // One pg-boss worker per slot. pg-boss waits out its polling interval after every job that finished sooner
  // (30 s while LISTEN/NOTIFY is up), so each slot wakes itself after a job: it keeps fetching while there is work
  // and falls back to polling / notifications only when the queue is empty.
  const slots = Math.max(1, opts.concurrency ?? 2);
  for (let i = 0; i < slots; i += 1) {
    const slot: { id?: string } = {};
    slot.id = await boss.work<unknown>(
      SYNC_QUEUE,
      {
        localConcurrency: 1,
        batchSize: 1,
        pollingIntervalSeconds,
        // Retries and jobs whose start time arrives send no notification; while LISTEN is up, poll for them every
        // couple of seconds rather than pg-boss's 30 s.
        notifyPollingIntervalSeconds: Math.max(2, pollingIntervalSeconds),
        minPriority: priority,
        maxPriority: priority,
        groupConcurrency: groupCaps,
      },
      async (jobs) => {
        const [job] = jobs;
        if (!job) return null;
        try {
          return await handle(job);
        } catch (error) {
          logger.warn({ err: error, job: job.id }, `sync job failed (will be retried): ${errorMessage(error)}`);
          throw error;
        } finally {
          if (slot.id) boss.notifyWorker(slot.id);
        }
      },
    );
  }

  return {
    active: () => running.size,
    async stop(options = {}) {
      const timeoutMs = options.timeoutMs ?? 30_000;
      const offWork = boss.offWork(SYNC_QUEUE, { wait: true }).catch((error: unknown) => {
        logger.warn({ err: error }, `stopping the sync worker: ${errorMessage(error)}`);
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const late = await Promise.race([offWork.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late && running.size > 0) {
        logger.warn(`handing back ${running.size} running sync job(s) to the queue`);
        for (const controller of running.values()) controller.abort(new Error('worker is shutting down'));
        await offWork;
      }
    },
  };
}
