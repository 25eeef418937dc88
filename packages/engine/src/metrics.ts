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
    tenantLag: new Gauge({
      name: 'sync_tenant_lag_seconds',
      help: 'Seconds since the last successful sync of each tenant',
      labelNames: ['client'] as const,
      registers,
    }),
    jobsEnqueued: new Counter({
      name: 'sync_jobs_enqueued_total',
      help: 'Jobs enqueued, by who triggered them',
      labelNames: ['triggered_by'] as const,
      registers,
    }),
    loopErrors: new Counter({
      name: 'sync_loop_errors_total',
      help: 'Errors caught in background loops',
      labelNames: ['loop'] as const,
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
