import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric the product exposes, in one registry per process. Names follow the design documents; the engine
 * and apps receive this object instead of touching prom-client globals, so tests can create their own.
 */
export type SyncMetrics = ReturnType<typeof createMetrics>;

export function createMetrics(options: { readonly defaultMetrics?: boolean; readonly prefix?: string } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    leaderElectionAttempts: new Counter({
      name: 'sync_leader_election_attempts_total',
      help: 'Lease acquire/renew attempts',
      registers,
    }),
    leaderElectionSuccesses: new Counter({
      name: 'sync_leader_election_successes_total',
      help: 'Attempts that acquired or renewed the lease',
      registers,
    }),
    leaderElectionFailures: new Counter({
      name: 'sync_leader_election_failures_total',
      help: 'Attempts that failed (lease held elsewhere or database error)',
      labelNames: ['reason'] as const,
      registers,
    }),
    isLeader: new Gauge({ name: 'sync_is_leader', help: '1 while this node holds the lease', registers }),
    leaderEpoch: new Gauge({
      name: 'sync_leader_epoch',
      help: 'Fencing epoch of the lease this node holds',
      registers,
    }),
    operations: new Counter({
      name: 'sync_operations_total',
      help: 'Sync runs by final status',
      labelNames: ['status', 'sync_type'] as const,
      registers,
    }),
    operationDuration: new Histogram({
      name: 'sync_operation_duration_seconds',
      help: 'Duration of sync runs',
      labelNames: ['sync_type'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    }),
    rowsSynced: new Counter({ name: 'sync_rows_synced_total', help: 'Rows written to PostgreSQL', registers }),
    rowsFailed: new Counter({ name: 'sync_rows_failed_total', help: 'Rows that could not be written', registers }),
    conflictsDetected: new Counter({
      name: 'sync_conflicts_detected_total',
      help: 'Rows changed on both sides since the last sync',
      labelNames: ['table'] as const,
      registers,
    }),
    conflictsResolved: new Counter({
      name: 'sync_conflicts_resolved_total',
      help: 'Conflicts resolved, by strategy',
      labelNames: ['strategy'] as const,
      registers,
    }),
    cacheHits: new Counter({ name: 'sync_cache_hits_total', help: 'State cache hits', registers }),
    cacheMisses: new Counter({ name: 'sync_cache_misses_total', help: 'State cache misses', registers }),
    cacheEvictions: new Counter({
      name: 'sync_cache_evictions_total',
      help: 'State cache entries evicted (TTL or invalidation)',
      labelNames: ['reason'] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'sync_queue_jobs',
      help: 'Jobs in the sync queues by state',
      labelNames: ['queue', 'state'] as const,
      registers,
    }),
    queueOldestWaiting: new Gauge({
      name: 'sync_queue_oldest_waiting_seconds',
      help: 'Age of the oldest job ready to run in each sync queue (0 when none waits)',
      labelNames: ['queue'] as const,
      registers,
    }),
    tenantLag: new Gauge({
      name: 'sync_tenant_lag_seconds',
      help: 'Seconds since the last successful sync of a tenant (since registration when it never synced); which tenants get a series is set by METRICS_TENANT_LABELS',
      labelNames: ['client'] as const,
      registers,
    }),
    // Fleet figures of this node's cluster, read from the database at scrape time: the same on every node of the
    // cluster, and a fixed number of series whatever the number of tenants.
    tenants: new Gauge({
      name: 'sync_tenants',
      help: "Tenants of this node's cluster by registration status",
      labelNames: ['status'] as const,
      registers,
    }),
    tenantsScheduled: new Gauge({
      name: 'sync_tenants_scheduled',
      help: 'Tenants the scheduler keeps in sync (sync enabled, neither paused nor deregistered)',
      registers,
    }),
    tenantsRpoBreached: new Gauge({
      name: 'sync_tenants_rpo_breached',
      help: 'Scheduled tenants whose last successful sync is older than RPO_FACTOR x their sync interval',
      registers,
    }),
    tenantsLagMax: new Gauge({
      name: 'sync_tenants_lag_max_seconds',
      help: 'Largest lag of a scheduled tenant (seconds since its last successful sync, or since registration)',
      registers,
    }),
    rpoFactor: new Gauge({
      name: 'sync_rpo_factor',
      help: 'RPO_FACTOR: a tenant breaches its recovery-point objective when its lag exceeds this many intervals',
      registers,
    }),
    recentRuns: new Gauge({
      name: 'sync_cluster_runs_recent',
      help: "Sync runs of this node's cluster (every node and worker) that finished in the last 10 minutes, by outcome",
      labelNames: ['status'] as const,
      registers,
    }),
    clusterLeaseValid: new Gauge({
      name: 'sync_cluster_lease_valid',
      help: "1 while the cluster's leader lease is held and unexpired (read from the lease row)",
      registers,
    }),
    clusterEpoch: new Gauge({
      name: 'sync_cluster_leader_epoch',
      help: "Fencing epoch of the cluster's lease row (grows by one on every change of leader)",
      registers,
    }),
    tenantsVerify: new Gauge({
      name: 'sync_tenants_verify',
      help: 'Tenants by the result of their last verification (match, mismatch, never)',
      labelNames: ['result'] as const,
      registers,
    }),
    tenantSeries: new Gauge({
      name: 'sync_metrics_tenant_series',
      help: 'Tenants given per-tenant series (sync_tenant_lag_seconds) in this scrape, as METRICS_TENANT_LABELS allows',
      registers,
    }),
    jobsEnqueued: new Counter({
      name: 'sync_jobs_enqueued_total',
      help: 'Jobs enqueued, by who triggered them',
      labelNames: ['triggered_by'] as const,
      registers,
    }),
    jobsDeferred: new Counter({
      name: 'sync_jobs_deferred_total',
      help: 'Sync jobs queued again because their fairness group (large, failing) already ran its cap of syncs',
      labelNames: ['group'] as const,
      registers,
    }),
    loopErrors: new Counter({
      name: 'sync_loop_errors_total',
      help: 'Errors caught in background loops',
      labelNames: ['loop'] as const,
      registers,
    }),
    drills: new Counter({
      name: 'sync_drills_total',
      help: 'Restore drills this process ran, by result (passed, failed)',
      labelNames: ['result'] as const,
      registers,
    }),
    drillDuration: new Histogram({
      name: 'sync_drill_duration_seconds',
      help: 'Duration of restore drills this process ran',
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600],
      registers,
    }),
    tenantsDrillOverdue: new Gauge({
      name: 'sync_tenants_drill_overdue',
      help: 'Tenants with a backup and no passed restore drill within DRILL_MAX_AGE_HOURS (counted from when drills began for them)',
      registers,
    }),
    tenantsDrillFailing: new Gauge({
      name: 'sync_tenants_drill_failing',
      help: 'Tenants whose latest restore drill failed',
      registers,
    }),
    drillMaxAge: new Gauge({
      name: 'sync_drill_max_age_seconds',
      help: 'DRILL_MAX_AGE_HOURS in seconds: a tenant is overdue without a passed drill for this long',
      registers,
    }),
    drillLastSuccess: new Gauge({
      name: 'sync_drill_last_success_timestamp_seconds',
      help: 'Unix time of the last passed restore drill of a tenant (0: never); which tenants get a series is set by METRICS_TENANT_LABELS (the most overdue first)',
      labelNames: ['client'] as const,
      registers,
    }),
    verifyResult: new Gauge({
      name: 'sync_verify_ok',
      help: '1 when the last verification of a tenant matched its source, 0 when not',
      labelNames: ['client'] as const,
      registers,
    }),
  };
}
