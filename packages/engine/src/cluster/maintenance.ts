import type { Logger } from 'pino';
import { LeadershipLostError, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import type { ClusterConfig } from './config.ts';
import type { LeaderElector } from './leader-election.ts';

/**
 * The leader's history maintenance: keeps sync_jobs, conflict_log, failed_rows, cache_events and leftover
 * sync_progress rows bounded by age, and the row history of point-in-time restores by each tenant's retention
 * (sync_metadata.prune_row_history, migration 000013). Runs on every node and acts only while its node leads, like the scheduler.
 *
 * The service roles cannot DELETE. Each batch calls sync_metadata.prune_history (migration 000011), an admin-owned
 * function that deletes at most one batch of one kind of history, only rows of this cluster, only rows older than
 * the retention asked for (never younger than one hour), and only while the epoch passed is the cluster's live
 * lease. The call runs inside the elector's fenced transaction, so a deposed leader deletes nothing.
 *
 * A pass walks every kind, batch after batch with a short pause between, until a batch comes back short; it stops
 * early when the node stops leading or is stopped. pg-boss prunes its own job tables (the queues'
 * deleteAfterSeconds, applied by its supervisor); this module does not touch them.
 *
 * restore_drills (sync_state.restore_drills) is pruned by its own function, sync_metadata.prune_drills (migration
 * 000014), with the same guarantees; each tenant's latest drill and latest passed drill are always kept.
 */

export const HISTORY_KINDS = [
  'skipped_runs',
  'sync_jobs',
  'conflict_log',
  'failed_rows',
  'cache_events',
  'sync_progress',
  'restore_drills',
] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

/**
 * Row history for point-in-time restores (migration 000013), pruned by sync_metadata.prune_row_history: each tenant
 * keeps its own retention (client_deployments.history_retention_days, `syncctl client retention NAME DAYS`).
 */
export const ROW_HISTORY_KINDS = ['row_history', 'history_runs', 'schema_versions'] as const;
export type RowHistoryKind = (typeof ROW_HISTORY_KINDS)[number];

/** The smallest retention prune_history accepts (it refuses anything shorter). */
export const MIN_RETENTION_SECONDS = 3600;

export type MaintenanceSettings = {
  /** Retention per kind, seconds (each at least MIN_RETENTION_SECONDS). */
  readonly retentionSeconds: Readonly<Record<HistoryKind, number>>;
  /** Most rows per batch (1 … 10 000). */
  readonly batchSize: number;
  /** Pause between two batches, ms. */
  readonly pauseMs: number;
  /** Seconds between passes. */
  readonly intervalSeconds: number;
};

/** The maintenance settings from the node's configuration. */
export function maintenanceSettings(
  config: Pick<
    ClusterConfig,
    | 'HISTORY_RETENTION_DAYS'
    | 'SKIPPED_RUN_RETENTION_HOURS'
    | 'CONFLICT_RETENTION_DAYS'
    | 'FAILED_ROW_RETENTION_DAYS'
    | 'CACHE_EVENTS_RETENTION_HOURS'
    | 'PROGRESS_RETENTION_DAYS'
    | 'DRILL_RETENTION_DAYS'
    | 'MAINTENANCE_BATCH_SIZE'
    | 'MAINTENANCE_PAUSE_MS'
    | 'MAINTENANCE_INTERVAL'
  >,
): MaintenanceSettings {
  const day = 86_400;
  return validateMaintenanceSettings({
    retentionSeconds: {
      skipped_runs: config.SKIPPED_RUN_RETENTION_HOURS * 3600,
      sync_jobs: config.HISTORY_RETENTION_DAYS * day,
      conflict_log: config.CONFLICT_RETENTION_DAYS * day,
      failed_rows: config.FAILED_ROW_RETENTION_DAYS * day,
      cache_events: config.CACHE_EVENTS_RETENTION_HOURS * 3600,
      sync_progress: config.PROGRESS_RETENTION_DAYS * day,
      restore_drills: config.DRILL_RETENTION_DAYS * day,
    },
    batchSize: config.MAINTENANCE_BATCH_SIZE,
    pauseMs: config.MAINTENANCE_PAUSE_MS,
    intervalSeconds: config.MAINTENANCE_INTERVAL,
  });
}

/** Throws a clear error for settings prune_history would refuse or that make no sense. */
export function validateMaintenanceSettings(settings: MaintenanceSettings): MaintenanceSettings {
  const problems: string[] = [];
  for (const kind of HISTORY_KINDS) {
    const s = settings.retentionSeconds[kind];
    if (!Number.isFinite(s) || s < MIN_RETENTION_SECONDS) {
      problems.push(`retention of ${kind} must be at least ${MIN_RETENTION_SECONDS} seconds (got ${s})`);
    }
  }
  if (settings.retentionSeconds.skipped_runs > settings.retentionSeconds.sync_jobs) {
    problems.push('skipped runs cannot be kept longer than sync jobs');
  }
  if (!Number.isInteger(settings.batchSize) || settings.batchSize < 1 || settings.batchSize > 10_000) {
    problems.push(`batch size must be 1 … 10000 (got ${settings.batchSize})`);
  }
  if (!Number.isFinite(settings.pauseMs) || settings.pauseMs < 0) {
    problems.push(`pause between batches must be ≥ 0 ms (got ${settings.pauseMs})`);
  }
  if (!Number.isFinite(settings.intervalSeconds) || settings.intervalSeconds <= 0) {
    problems.push(`maintenance interval must be > 0 seconds (got ${settings.intervalSeconds})`);
  }
  if (problems.length > 0) throw new Error(`invalid history maintenance settings: ${problems.join('; ')}`);
  return settings;
}

export type MaintenancePassResult = {
  /** Rows deleted per kind. */
  readonly deleted: Readonly<Record<HistoryKind, number>>;
  /** Row history entries, runs and DDL versions deleted (each tenant's own retention). */
  readonly rowHistoryDeleted: Readonly<Record<RowHistoryKind, number>>;
  readonly batches: number;
  /** The pass ended before every kind was done (stopped, or leadership lost). */
  readonly interrupted: boolean;
};

export type MaintenanceOptions = {
  readonly elector: Pick<LeaderElector, 'fenced' | 'isLeader'>;
  readonly cluster: string;
  readonly settings: MaintenanceSettings;
  readonly logger?: Logger;
  readonly metrics?: SyncMetrics;
  /** Asked between batches: true ends the pass. */
  readonly shouldStop?: () => boolean;
  /** Most batches per kind in one pass (default unlimited): the next pass goes on. */
  readonly maxBatchesPerKind?: number;
};

/** One fenced batch: deletes at most `batchSize` rows of `kind`; returns how many. */
export async function pruneHistoryBatch(
  opts: Pick<MaintenanceOptions, 'elector' | 'cluster' | 'settings'>,
  kind: HistoryKind,
): Promise<number> {
  return opts.elector.fenced(
    async (client, lease) => {
      const res =
        kind === 'restore_drills'
          ? await client.query<{ n: number }>(
              `SELECT sync_metadata.prune_drills($1::text, $2::bigint,
                        make_interval(secs => $3::double precision), $4::integer) AS n`,
              [opts.cluster, lease.epoch, opts.settings.retentionSeconds[kind], opts.settings.batchSize],
            )
          : await client.query<{ n: number }>(
              `SELECT sync_metadata.prune_history($1::text, $2::text, $3::bigint,
                        make_interval(secs => $4::double precision), $5::integer) AS n`,
              [kind, opts.cluster, lease.epoch, opts.settings.retentionSeconds[kind], opts.settings.batchSize],
            );
      return Number(res.rows[0]?.n ?? 0);
    },
    { cluster: opts.cluster },
  );
}

/** One fenced batch of row history past its tenant's retention (at most `batchSize` rows); returns how many. */
export async function pruneRowHistoryBatch(
  opts: Pick<MaintenanceOptions, 'elector' | 'cluster' | 'settings'>,
  kind: RowHistoryKind,
): Promise<number> {
  return opts.elector.fenced(
    async (client, lease) => {
      const res = await client.query<{ n: number }>(
        'SELECT sync_metadata.prune_row_history($1::text, $2::text, $3::bigint, $4::integer) AS n',
        [kind, opts.cluster, lease.epoch, opts.settings.batchSize],
      );
      return Number(res.rows[0]?.n ?? 0);
    },
    { cluster: opts.cluster },
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One maintenance pass (see the module comment). Throws LeadershipLostError when the lease is lost mid-pass (what
 * was deleted before stays deleted; it was all deleted while this node led).
 */
export async function runMaintenancePass(opts: MaintenanceOptions): Promise<MaintenancePassResult> {
  const deleted = Object.fromEntries(HISTORY_KINDS.map((k) => [k, 0])) as Record<HistoryKind, number>;
  const rowHistoryDeleted = Object.fromEntries(ROW_HISTORY_KINDS.map((k) => [k, 0])) as Record<RowHistoryKind, number>;
  let batches = 0;
  const halted = () => (opts.shouldStop?.() ?? false) || !opts.elector.isLeader();
  const kinds = [
    ...HISTORY_KINDS.map((kind) => ({
      prune: () => pruneHistoryBatch(opts, kind),
      add: (n: number) => (deleted[kind] += n),
    })),
    ...ROW_HISTORY_KINDS.map((kind) => ({
      prune: () => pruneRowHistoryBatch(opts, kind),
      add: (n: number) => (rowHistoryDeleted[kind] += n),
    })),
  ];
  for (const kind of kinds) {
    for (let n = 0; n < (opts.maxBatchesPerKind ?? Number.POSITIVE_INFINITY); n += 1) {
      if (halted()) return { deleted, rowHistoryDeleted, batches, interrupted: true };
      const count = await kind.prune();
      batches += 1;
      kind.add(count);
      if (count < opts.settings.batchSize) break;
      if (opts.settings.pauseMs > 0) await sleep(opts.settings.pauseMs);
    }
  }
  return { deleted, rowHistoryDeleted, batches, interrupted: false };
}

export type MaintenanceLoop = { stop(): Promise<void>; runNow(): Promise<void> };

/**
 * Runs runMaintenancePass every `settings.intervalSeconds` while this node leads, and once soon after it becomes
 * leader. Errors are logged and counted, never thrown out of the timer.
 */
export function startMaintenance(
  opts: Omit<MaintenanceOptions, 'shouldStop' | 'elector'> & {
    readonly elector: LeaderElector;
    readonly logger: Logger;
  },
): MaintenanceLoop {
  validateMaintenanceSettings(opts.settings);
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const pass = async () => {
    if (stopped || !opts.elector.isLeader()) return;
    try {
      const r = await runMaintenancePass({ ...opts, shouldStop: () => stopped });
      const total = [...Object.values(r.deleted), ...Object.values(r.rowHistoryDeleted)].reduce((a, b) => a + b, 0);
      if (total > 0) {
        opts.logger.info(
          { deleted: r.deleted, rowHistory: r.rowHistoryDeleted, batches: r.batches },
          `history maintenance deleted ${total} old row(s)`,
        );
      }
    } catch (error) {
      if (error instanceof LeadershipLostError) {
        opts.logger.warn(`history maintenance: ${error.message}; stopped pruning`);
        return;
      }
      opts.metrics?.loopErrors.inc({ loop: 'maintenance' });
      opts.logger.warn({ err: error }, `history maintenance failed: ${errorMessage(error)}; retrying next pass`);
    }
  };
  const run = () => {
    current = current.then(pass);
    return current;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void run().finally(schedule);
    }, opts.settings.intervalSeconds * 1000);
    timer.unref();
  };
  const onChange = (change: { isLeader: boolean }) => {
    if (change.isLeader) void run();
  };
  opts.elector.on('change', onChange);
  schedule();
  if (opts.elector.isLeader()) void run();
  return {
    runNow: run,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      opts.elector.off('change', onChange);
      await current;
    },
  };
}
