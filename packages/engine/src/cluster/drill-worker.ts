import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { DRILL_QUEUE, drillJobPayloadSchema } from '@owui-sync/schema';
import type { DbScope } from '../db.ts';
import { runDrill } from '../drill/drill.ts';
import { sweepStaleDrillDirs } from '../drill/drill-files.ts';
import { AppError, ERROR_CODES, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import { bossSettings } from '../queue/boss-settings.ts';
import { clusterPriority } from '../queue/enqueue.ts';

/**
 * Restore-drill workers: ordinary pg-boss jobs on the drill queue (enqueued by the leader's scheduler), one at a time
 * per slot, this cluster's jobs only. A drill that finds a problem is a result, not a job failure: it is recorded
 * and the job completes. A drill the process could not finish (killed, database gone) is retried by pg-boss. On
 * start, the directories of drills killed mid-way (their process is gone) are removed.
 */

export type DrillWorkerOptions = {
  readonly boss: PgBoss;
  readonly pool: pg.Pool;
  readonly cluster: string;
  readonly hostId: string;
  /** Recorded as the drill's run_by (e.g. worker-1@host). */
  readonly workerId: string;
  /** Drills this process runs at once (default 1). */
  readonly concurrency?: number;
  /** Drill directory (see drill-files.ts). */
  readonly drillDir: string;
  readonly pollingIntervalSeconds?: number;
  readonly logger: Logger;
  readonly metrics?: SyncMetrics;
};

export type DrillWorker = {
  /** Stale drill directories removed at start. */
  readonly swept: readonly string[];
  /** Stops taking drills and waits up to `timeoutMs` (default 30 s) for running ones. */
  stop(options?: { timeoutMs?: number }): Promise<void>;
};

export async function startDrillWorker(opts: DrillWorkerOptions): Promise<DrillWorker> {
  const { boss, logger } = opts;
  const swept = sweepStaleDrillDirs(opts.drillDir);
  if (swept.length > 0) logger.info({ dirs: swept }, `removed ${swept.length} directory(ies) of interrupted drills`);
  const scope: DbScope = { hostId: opts.hostId, cluster: opts.cluster };
  const priority = clusterPriority(opts.cluster);
  const pollingIntervalSeconds = opts.pollingIntervalSeconds ?? bossSettings(boss).pollingIntervalSeconds;
  const slots = Math.max(1, opts.concurrency ?? 1);
  for (let i = 0; i < slots; i += 1) {
    await boss.work<unknown>(
      DRILL_QUEUE,
      {
        localConcurrency: 1,
        batchSize: 1,
        pollingIntervalSeconds: Math.max(2, pollingIntervalSeconds),
        minPriority: priority,
        maxPriority: priority,
      },
      async (jobs) => {
        const [job] = jobs;
        if (!job) return null;
        const parsed = drillJobPayloadSchema.safeParse(job.data);
        if (!parsed.success) {
          throw new Error(`invalid drill job payload: ${parsed.error.issues.map((x) => x.message).join('; ')}`);
        }
        const payload = parsed.data;
        try {
          const r = await runDrill({
            pool: opts.pool,
            clientName: payload.client_name,
            scope,
            drillDir: opts.drillDir,
            triggeredBy: payload.triggered_by,
            queueJobId: job.id,
            runBy: opts.workerId,
            logger: logger.child({ client: payload.client_name, job: job.id }),
            ...(opts.metrics ? { metrics: opts.metrics } : {}),
          });
          return { drillId: r.drillId, passed: r.passed, failure: r.failure, seconds: r.durationSeconds };
        } catch (error) {
          if (error instanceof AppError && error.code === ERROR_CODES.notFound) {
            logger.info({ client: payload.client_name, job: job.id }, `skipped drill: ${error.message}`);
            return { skipped: error.message };
          }
          logger.warn({ err: error, job: job.id }, `drill job failed (will be retried): ${errorMessage(error)}`);
          throw error;
        }
      },
    );
  }
  return {
    swept,
    async stop(options = {}) {
      // A drill still running when the wait ends is left to pg-boss (retried elsewhere) and to the next start's sweep.
      let timer: NodeJS.Timeout | undefined;
      const waited = boss.offWork(DRILL_QUEUE, { wait: true }).catch((error: unknown) => {
        logger.warn({ err: error }, `stopping the drill worker: ${errorMessage(error)}`);
      });
      await Promise.race([
        waited,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, options.timeoutMs ?? 30_000);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}
