import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { LeadershipLostError, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import { enqueueScheduledDrills, enqueueScheduledSyncs } from '../queue/enqueue.ts';
import { claimDueDrills, claimDueTenants, forgetDrillSlots } from '../tenants/claim-due.ts';
import { OFFLINE_AFTER_SECONDS, markSilentHostsOffline } from './host-registry.ts';
import type { LeaderElector, Lease } from './leader-election.ts';

export { ISOLATED_FAILURES } from '../tenants/claim-due.ts';

/**
 * The scheduler runs on every node and acts only while its node leads. Each tick, in one fenced transaction:
 * claims the tenants whose next slot has come (sync enabled, not paused or deregistered), moves each one's
 * next_sync_at to its following slot, inserts one queue job per tenant (coalescing with a job already queued), and
 * marks hosts silent for five minutes offline. If the lease was lost the transaction does nothing at all. Jobs of
 * tenants whose SQLite file is large, or whose last run failed, carry a fairness group (SYNC_GROUPS) that workers
 * cap, so small healthy tenants always find a free slot.
 *
 * Slots: see ../tenants/claim-due.ts (the claim on due tenants and drills).
 *
 * Restore drills (drillIntervalSeconds > 0) follow the same scheme in the same transaction, with their own offset
 * and next_drill_at: every tenant with a backup (synced once, not deregistered) is drilled once per drill interval,
 * tenants spread evenly over it. A tenant seen for the first time gets its first slot, not an immediate drill, so
 * turning drills on for a large fleet does not drill every tenant at once. With drills off, the scheduler forgets
 * the tenants' drill slots (and so their drills_since: they stop counting as overdue).
 */

export type SchedulerTickResult = {
  /** Tenants whose slot came in this tick. */
  readonly due: number;
  /** New jobs inserted. */
  readonly enqueued: number;
  /** Due tenants that already had a job queued (merged into it). */
  readonly coalesced: number;
  /** Hosts marked offline (node@hostname). */
  readonly offlineHosts: readonly string[];
  /** Restore drill jobs inserted (due drills that found one queued coalesce with it). */
  readonly drillsEnqueued: number;
  /** The pass hit its batch limit: more tenants are due now (the loop runs the next pass at once). */
  readonly more: boolean;
  readonly durationMs: number;
};

/** Most tenants one pass enqueues; a larger backlog (e.g. the first start) is cleared by back-to-back passes. */
export const SCHEDULER_BATCH_SIZE = 1000;

/**
 * Fairness groups of scheduled jobs (pg-boss `group`): a tenant whose SQLite file is large goes in `large`, one
 * whose last run failed in `failing`; the rest run ungrouped. Workers cap each group's running jobs cluster-wide
 * (see syncGroupConcurrency in worker.ts), so slow or failing tenants never hold every slot.
 */
export const SYNC_GROUPS = { large: 'large', failing: 'failing' } as const;
export type SyncGroup = (typeof SYNC_GROUPS)[keyof typeof SYNC_GROUPS];

/**
 * Default of LARGE_TENANT_MB: a tenant whose SQLite file had at least this many MB at its last run counts as large.
 * The size, not a run's duration, decides: on an overloaded machine every run is slow, and classing tenants by
 * duration would then cap most of the fleet.
 */
export const LARGE_TENANT_MB = 256;

export type SchedulerTickOptions = {
  readonly elector: Pick<LeaderElector, 'fenced'>;
  readonly boss: PgBoss;
  readonly cluster: string;
  /** Most tenants handled per pass (default SCHEDULER_BATCH_SIZE); a full pass is followed by another at once. */
  readonly batchSize?: number;
  readonly offlineAfterSeconds?: number;
  /** Seconds between two restore drills of a tenant (DRILL_INTERVAL_HOURS × 3600); 0 or absent: no drills. */
  readonly drillIntervalSeconds?: number;
  /**
   * A tenant whose SQLite file had at least this many MB at its last successful run (page size × page count, as
   * recorded by change capture) is enqueued in the `large` group (default LARGE_TENANT_MB).
   */
  readonly largeTenantMb?: number;
  readonly logger?: Logger;
  readonly metrics?: SyncMetrics;
};

/** The fairness group of a due tenant's job, or undefined for an ordinary one (failing wins over large). */
function groupOf(row: { large: boolean; failing: boolean }): { id: SyncGroup; tier: SyncGroup } | undefined {
  if (row.failing) return { id: SYNC_GROUPS.failing, tier: SYNC_GROUPS.failing };
  if (row.large) return { id: SYNC_GROUPS.large, tier: SYNC_GROUPS.large };
  return undefined;
}

/** Plans and enqueues the due restore drills of one pass, inside the pass's fenced transaction. */
async function scheduleDrills(
  client: pg.PoolClient,
  opts: SchedulerTickOptions,
  epoch: number,
  batchSize: number,
): Promise<{ claimed: number; enqueued: number }> {
  const interval = Math.floor(opts.drillIntervalSeconds ?? 0);
  if (interval <= 0) {
    await forgetDrillSlots(client, opts.cluster);
    return { claimed: 0, enqueued: 0 };
  }
  const claimed = await claimDueDrills(client, { cluster: opts.cluster, batchSize, intervalSeconds: interval });
  const enqueued = await enqueueScheduledDrills(
    opts.boss,
    client,
    claimed.filter((row) => row.due),
    { cluster: opts.cluster, epoch },
  );
  return { claimed: claimed.length, enqueued };
}

/**
 * One scheduler pass (see the module comment). Throws LeadershipLostError when this node no longer leads; any other
 * error rolls the whole pass back (nothing enqueued, no slot moved).
 */
export async function runSchedulerTick(opts: SchedulerTickOptions): Promise<SchedulerTickResult> {
  const started = performance.now();
  const { boss, cluster } = opts;
  const batchSize = opts.batchSize ?? SCHEDULER_BATCH_SIZE;
  const result = await opts.elector.fenced(
    async (client: pg.PoolClient, lease: Lease) => {
      const claimed = await claimDueTenants(client, {
        cluster,
        batchSize,
        largeBytes: Math.round((opts.largeTenantMb ?? LARGE_TENANT_MB) * 1024 * 1024),
      });
      const enqueued = await enqueueScheduledSyncs(
        boss,
        client,
        claimed.map((row) => ({ ...row, group: groupOf(row) })),
        { cluster, epoch: lease.epoch },
      );
      const drills = await scheduleDrills(client, opts, lease.epoch, batchSize);
      const offlineHosts = await markSilentHostsOffline(
        client,
        cluster,
        opts.offlineAfterSeconds ?? OFFLINE_AFTER_SECONDS,
      );
      return {
        due: claimed.length,
        enqueued,
        coalesced: claimed.length - enqueued,
        offlineHosts,
        drillsEnqueued: drills.enqueued,
        drillsMore: drills.claimed >= batchSize,
      };
    },
    { cluster },
  );
  if (result.enqueued > 0) opts.metrics?.jobsEnqueued.inc({ triggered_by: 'scheduler' }, result.enqueued);
  if (result.drillsEnqueued > 0) {
    opts.logger?.info({ drills: result.drillsEnqueued }, `enqueued ${result.drillsEnqueued} restore drill(s)`);
  }
  if (result.offlineHosts.length > 0) {
    opts.logger?.warn({ hosts: result.offlineHosts }, `marked silent hosts offline: ${result.offlineHosts.join(', ')}`);
  }
  const { drillsMore, ...rest } = result;
  return { ...rest, more: result.due >= batchSize || drillsMore, durationMs: performance.now() - started };
}

export type SchedulerLoop = { stop(): Promise<void>; tickNow(): Promise<void> };

/**
 * Runs runSchedulerTick every `tickSeconds` while the elector says this node leads (and once right after it
 * becomes leader). Errors are logged and counted, never thrown out of the timer.
 */
export function startScheduler(
  opts: SchedulerTickOptions & {
    readonly elector: LeaderElector;
    readonly tickSeconds: number;
    readonly logger: Logger;
    /**
     * Marks sync_jobs rows left 'running' by dead workers as failed (the engine's reapStaleSyncJobs), run after each
     * leader pass so a crashed run never stays 'running' until the tenant's next sync.
     */
    readonly reapStaleJobs?: () => Promise<number>;
  },
): SchedulerLoop {
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const tick = async () => {
    try {
      // Back-to-back passes while a backlog remains; each pass is one short fenced transaction.
      for (let more = true; more && !stopped && opts.elector.isLeader();) {
        const r = await runSchedulerTick(opts);
        more = r.more;
        if (r.due > 0) {
          opts.logger.debug(
            { due: r.due, enqueued: r.enqueued, coalesced: r.coalesced, ms: Math.round(r.durationMs) },
            'scheduler tick',
          );
        }
      }
      if (opts.reapStaleJobs && !stopped && opts.elector.isLeader()) {
        const reaped = await opts.reapStaleJobs();
        if (reaped > 0) opts.logger.warn(`marked ${reaped} sync job(s) of stopped workers as failed`);
      }
    } catch (error) {
      if (error instanceof LeadershipLostError) {
        opts.logger.warn(`scheduler: ${error.message}; not enqueuing`);
        return;
      }
      opts.metrics?.loopErrors.inc({ loop: 'scheduler' });
      opts.logger.warn({ err: error }, `scheduler tick failed: ${errorMessage(error)}; retrying next tick`);
    }
  };
  const run = () => {
    current = current.then(tick);
    return current;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void run().finally(schedule);
    }, opts.tickSeconds * 1000);
  };
  const onChange = (change: { isLeader: boolean }) => {
    if (change.isLeader) void run();
  };
  opts.elector.on('change', onChange);
  schedule();
  if (opts.elector.isLeader()) void run();
  return {
    tickNow: run,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      opts.elector.off('change', onChange);
      await current;
    },
  };
}
