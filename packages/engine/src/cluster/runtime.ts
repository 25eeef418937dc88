import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { createPool } from '../db.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import type { SyncMetrics } from '../metrics.ts';
import { processIdentity, usesTransactionPooler, type ClusterConfig, type ProcessKind } from './config.ts';
import { startHostHeartbeat, type HostHeartbeat } from './host-registry.ts';
import { LeaderElector } from './leader-election.ts';
import { callerIdentity, createBoss, queueSchemaOf } from './queue.ts';
import { retryUntilReady } from './retry.ts';
import { maintenanceSettings, startMaintenance, type MaintenanceLoop } from './maintenance.ts';
import { startScheduler, type SchedulerLoop } from './scheduler.ts';
import { startSyncWorker, type RunTenantSync, type SyncWorker } from './worker.ts';
import { startDrillWorker, type DrillWorker } from './drill-worker.ts';
import { defaultDrillDir } from '../drill/drill-files.ts';
import { reapStaleSyncJobs } from '../tenants/claim.ts';
import { serviceLoginProblem } from '../service-login.ts';

/**
 * Builds and starts the cluster side of a process: service-role pool, host registration and heartbeat, pg-boss,
 * and then what its kind runs: a full node everything (leader election + scheduler + maintenance + workers), a
 * worker the sync and drill workers alone, a scheduler the leader's part alone (election, scheduler, maintenance;
 * it registers as a node, since it takes part in the election, and runs no job), an API-only process nothing but
 * its host row and a queue client to send jobs with (the caller serves the API on top). Waits for
 * the database at start-up instead of failing. `stop()` hands leadership over first, then finishes or hands back
 * running syncs, then closes connections.
 */

export type ClusterRuntime = {
  readonly pool: pg.Pool;
  readonly boss: PgBoss;
  readonly hostId: string;
  readonly nodeName: string;
  readonly hostname: string;
  readonly pooled: boolean;
  /** Present on full nodes and schedulers. */
  readonly elector: LeaderElector | undefined;
  readonly worker: SyncWorker | undefined;
  stop(): Promise<void>;
};

export type ClusterRuntimeOptions = {
  readonly config: ClusterConfig;
  readonly kind: ProcessKind;
  readonly runTenantSync: RunTenantSync;
  readonly logger: Logger;
  readonly metrics: SyncMetrics;
  readonly version?: string;
  /** Aborts a start-up still waiting for the database. */
  readonly signal?: AbortSignal;
};

export async function startClusterRuntime(opts: ClusterRuntimeOptions): Promise<ClusterRuntime> {
  const { config, kind, logger, metrics } = opts;
  const identity = processIdentity(config, kind);
  const elects = kind === 'node' || kind === 'scheduler';
  const runsJobs = kind === 'node' || kind === 'worker';
  // A scheduler registers as a node: it takes part in the election.
  const role = kind === 'worker' ? 'worker' : kind === 'api' ? 'api' : 'node';
  const pooled = usesTransactionPooler(config);
  const connectionString = config.DATABASE_URL ?? '';
  const pool = createPool(connectionString, {
    max: config.DB_POOL_SIZE,
    applicationName: `owui-sync-${kind}`,
    maxLifetimeSeconds: config.DB_CONNECTION_LIFETIME,
    logger,
  });
  const cleanup: (() => Promise<void>)[] = [async () => pool.end()];
  const rollback = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };
  try {
    // Never run as the admin login (a superuser or sync_metadata's owner), whatever the URLs say.
    const adminLogin = await retryUntilReady('checking the login role', () => serviceLoginProblem(pool, kind), {
      logger,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (adminLogin) throw new ConfigError([adminLogin]);
    // The role's cluster and queue schema first: a role of another cluster would see nothing (and say so late).
    const caller = await retryUntilReady("reading this role's cluster", () => callerIdentity(pool), {
      logger,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const queueSchema = queueSchemaOf(caller, identity.cluster);
    const heartbeat: HostHeartbeat = await retryUntilReady(
      'registering this host',
      () =>
        startHostHeartbeat({
          pool,
          identity: { ...identity, role, ...(opts.version ? { version: opts.version } : {}) },
          intervalSeconds: config.HEARTBEAT_INTERVAL,
          logger,
          metrics,
        }),
      { logger, ...(opts.signal ? { signal: opts.signal } : {}) },
    );
    cleanup.push(() => heartbeat.stop());
    const hostId = heartbeat.hostId;

    const boss = createBoss({
      connectionString,
      pooled,
      logger,
      pollingIntervalSeconds: config.QUEUE_POLL_INTERVAL,
      superviseIntervalSeconds: config.QUEUE_SUPERVISE_INTERVAL,
      instanceName: identity.nodeName,
      applicationName: `owui-sync-${kind}-queue`,
      schema: queueSchema,
      max: Math.max(2, Math.min(10, (runsJobs ? config.WORKER_CONCURRENCY : 0) + 2)),
    });
    await retryUntilReady('starting the job queue', () => boss.start(), {
      logger,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    cleanup.push(() => boss.stop({ graceful: false }));

    let elector: LeaderElector | undefined;
    let scheduler: SchedulerLoop | undefined;
    let maintenance: MaintenanceLoop | undefined;
    if (elects) {
      elector = new LeaderElector({
        pool,
        cluster: identity.cluster,
        leaderId: `${identity.nodeName}@${identity.hostname}`,
        hostId,
        leaseSeconds: config.LEASE_DURATION,
        renewSeconds: config.HEARTBEAT_INTERVAL,
        logger,
        metrics,
      });
      await elector.start();
      cleanup.push(() => elector!.stop());
      scheduler = startScheduler({
        elector,
        boss,
        cluster: identity.cluster,
        tickSeconds: config.SCHEDULER_INTERVAL,
        offlineAfterSeconds: config.OFFLINE_AFTER,
        drillIntervalSeconds: config.DRILL_INTERVAL_HOURS * 3600,
        largeTenantMb: config.LARGE_TENANT_MB,
        logger,
        metrics,
        reapStaleJobs: () => reapStaleSyncJobs(pool, { hostId, cluster: identity.cluster }),
      });
      cleanup.push(() => scheduler!.stop());
      if (config.MAINTENANCE_ENABLED) {
        maintenance = startMaintenance({
          elector,
          cluster: identity.cluster,
          settings: maintenanceSettings(config),
          logger,
          metrics,
        });
        cleanup.push(() => maintenance!.stop());
      }
    }

    let worker: SyncWorker | undefined;
    if (runsJobs && config.WORKER_CONCURRENCY > 0) {
      worker = await startSyncWorker({
        boss,
        pool,
        runTenantSync: opts.runTenantSync,
        cluster: identity.cluster,
        hostId,
        workerId: `${identity.nodeName}@${identity.hostname}`,
        concurrency: config.WORKER_CONCURRENCY,
        pollingIntervalSeconds: config.QUEUE_POLL_INTERVAL,
        claimTtlSeconds: config.SYNC_CLAIM_TTL,
        batchSize: config.BATCH_SIZE,
        groups: { large: config.LARGE_TENANT_CONCURRENCY, failing: config.FAILING_TENANT_CONCURRENCY },
        logger,
        metrics,
      });
    }
    let drills: DrillWorker | undefined;
    if (runsJobs && config.DRILL_CONCURRENCY > 0) {
      try {
        drills = await startDrillWorker({
          boss,
          pool,
          cluster: identity.cluster,
          hostId,
          workerId: `${identity.nodeName}@${identity.hostname}`,
          concurrency: config.DRILL_CONCURRENCY,
          drillDir: config.DRILL_DIR ?? defaultDrillDir(),
          pollingIntervalSeconds: config.QUEUE_POLL_INTERVAL,
          logger,
          metrics,
        });
      } catch (error) {
        // A database installed before drills existed has no drill queue yet: syncs go on, drills wait for init.
        logger.warn({ err: error }, `restore drills not started: ${errorMessage(error)}; run syncctl init (admin)`);
      }
    }
    logger.info(
      { cluster: identity.cluster, node: identity.nodeName, hostname: identity.hostname, hostId, pooled, kind },
      `${kind} ${identity.nodeName} started in cluster "${identity.cluster}"`,
    );

    let stopping: Promise<void> | undefined;
    return {
      pool,
      boss,
      hostId,
      nodeName: identity.nodeName,
      hostname: identity.hostname,
      pooled,
      elector,
      worker,
      stop() {
        stopping ??= (async () => {
          // Leadership first, so the other node takes over while this one finishes its syncs.
          await scheduler?.stop().catch(() => undefined);
          await maintenance?.stop().catch(() => undefined);
          await elector?.stop().catch(() => undefined);
          await worker?.stop({ timeoutMs: config.SHUTDOWN_TIMEOUT * 1000 }).catch((error: unknown) => {
            logger.warn({ err: error }, `stopping the worker: ${errorMessage(error)}`);
          });
          await drills?.stop({ timeoutMs: config.SHUTDOWN_TIMEOUT * 1000 });
          await boss.stop({ graceful: true, timeout: 5000 }).catch(() => undefined);
          await heartbeat.stop().catch(() => undefined);
          await pool.end().catch(() => undefined);
          logger.info(`${kind} ${identity.nodeName} stopped`);
        })();
        return stopping;
      },
    };
  } catch (error) {
    await rollback();
    throw error;
  }
}
