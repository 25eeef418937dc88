import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { CONFIG_DEFAULTS } from '@owui-sync/schema';
import { withTransaction } from './db.ts';
import type { SyncMetrics } from './metrics.ts';
import { clusterQueueCounts, type QueueCount } from './queue/counts.ts';
import { schedulableSql } from './tenants/can-sync-now.ts';

/**
 * Fleet figures for /metrics, read from the database when Prometheus scrapes: tenants by status, tenants outside
 * their recovery-point objective, the largest lag, runs finished in the last ten minutes by outcome, the lease, and
 * verification results — a fixed number of series however many tenants the cluster has. Per-tenant series
 * (sync_tenant_lag_seconds, sync_verify_ok) are kept to what METRICS_TENANT_LABELS allows.
 *
 * One read serves every scrape for `cacheMs` (default 5 s), and concurrent scrapes share one read, so two
 * Prometheus servers scraping both nodes every few seconds cost a handful of aggregate queries.
 */

/** Which tenants get per-tenant series: all, none, or the N furthest behind (relative to their interval). */
export type TenantLabels =
  { readonly mode: 'all' } | { readonly mode: 'none' } | { readonly mode: 'top'; readonly n: number };

export const DEFAULT_TENANT_LABELS: string = CONFIG_DEFAULTS.METRICS_TENANT_LABELS;
export const MAX_TOP_TENANTS = 10_000;

/** Parses METRICS_TENANT_LABELS: `true` (every tenant), `false` (none) or `top-N`; throws with the accepted forms. */
export function parseTenantLabels(value: string): TenantLabels {
  const v = value.trim().toLowerCase();
  if (['true', 'all', 'yes', 'on', '1'].includes(v)) return { mode: 'all' };
  if (['false', 'none', 'no', 'off', '0'].includes(v)) return { mode: 'none' };
  const top = /^top-(\d{1,6})$/.exec(v);
  if (top) {
    const n = Number(top[1]);
    if (n >= 1 && n <= MAX_TOP_TENANTS) return { mode: 'top', n };
  }
  throw new Error(
    `expected true, false or top-N with N from 1 to ${MAX_TOP_TENANTS} (e.g. ${DEFAULT_TENANT_LABELS}), got "${value}"`,
  );
}

export function describeTenantLabels(t: TenantLabels): string {
  return t.mode === 'all' ? 'true' : t.mode === 'none' ? 'false' : `top-${t.n}`;
}

export type FleetCollectorOptions = {
  readonly pool: pg.Pool;
  /** The node's pg-boss, for the schema its queue depth and age are read from (without it: pgboss). */
  readonly boss?: PgBoss | undefined;
  readonly cluster: string;
  readonly hostId: string;
  readonly metrics: SyncMetrics;
  readonly tenantLabels?: TenantLabels;
  /** A scheduled tenant breaches its RPO when its lag exceeds rpoFactor × sync_interval (default 2). */
  readonly rpoFactor?: number;
  /** A tenant is overdue for a restore drill without a passed one for this long, seconds (default 2 days). */
  readonly drillMaxAgeSeconds?: number;
  /** How long one read serves scrapes, ms (default 5000; 0 reads on every scrape). */
  readonly cacheMs?: number;
};

export type FleetCollector = {
  /** Brings the fleet gauges up to date (from the cache when it is fresh enough). */
  refresh(): Promise<void>;
};

const STATUSES = ['registered', 'active', 'paused', 'error', 'deregistered'] as const;
const RUN_STATUSES = ['success', 'failed', 'conflict'] as const;

type TenantAggregate = {
  by_status: Record<string, number> | null;
  scheduled: number;
  rpo_breached: number;
  max_lag: number | null;
  top: { client_name: string; lag: number }[] | null;
};

type ClusterAggregate = {
  runs: Record<string, number> | null;
  lease_valid: boolean | null;
  epoch: string | null;
  verified_match: number;
  verified_mismatch: number;
  verify: { client_name: string; match: boolean }[] | null;
};

/**
 * Lag is measured from the completion of the tenant's latest successful run (the newest run by start time that
 * succeeded: one step down sync_jobs_deployment_idx per tenant), or from its registration when it never synced.
 * Ranking for per-tenant series: scheduled tenants first, then by lag relative to interval.
 */
const TENANTS_SQL = `
  WITH t AS (
    SELECT d.client_name, d.status, d.sync_interval,
           ${schedulableSql('d')} AS scheduled,
           greatest(0, EXTRACT(EPOCH FROM now() - coalesce(s.completed_at, d.created_at)))::float8 AS lag
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
      LEFT JOIN LATERAL (
        SELECT j.completed_at FROM sync_metadata.sync_jobs j
         WHERE j.deployment_id = d.deployment_id AND j.status = 'success' AND j.completed_at IS NOT NULL
         ORDER BY j.started_at DESC LIMIT 1) s ON true
     WHERE h.cluster_name = $1::text
  )
  SELECT (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n FROM t GROUP BY status) x)
           AS by_status,
         count(*) FILTER (WHERE scheduled)::int AS scheduled,
         count(*) FILTER (WHERE scheduled AND lag > $2::float8 * sync_interval)::int AS rpo_breached,
         max(lag) FILTER (WHERE scheduled) AS max_lag,
         (SELECT json_agg(json_build_object('client_name', client_name, 'lag', lag))
            FROM (SELECT client_name, lag FROM t
                   ORDER BY scheduled DESC, lag / sync_interval DESC, client_name
                   LIMIT $3::integer) y) AS top
    FROM t`;

const CLUSTER_SQL = `
  SELECT (SELECT json_object_agg(status, n) FROM (
            SELECT j.status, count(*)::int AS n
              FROM sync_metadata.sync_jobs j
              JOIN sync_metadata.client_deployments d ON d.deployment_id = j.deployment_id
              JOIN sync_metadata.hosts h ON h.host_id = d.host_id
             WHERE h.cluster_name = $1::text
               AND j.started_at > now() - interval '1 day'
               AND j.completed_at > now() - interval '10 minutes'
             GROUP BY j.status) r) AS runs,
         (SELECT le.expires_at > now() FROM sync_metadata.leader_election le WHERE le.cluster_name = $1::text)
           AS lease_valid,
         (SELECT le.epoch::text FROM sync_metadata.leader_election le WHERE le.cluster_name = $1::text) AS epoch,
         count(*) FILTER (WHERE v.match)::int AS verified_match,
         count(*) FILTER (WHERE NOT v.match)::int AS verified_mismatch,
         (SELECT json_agg(json_build_object('client_name', client_name, 'match', match))
            FROM (SELECT d2.client_name, v2.match
                    FROM sync_state.verify_results v2
                    JOIN sync_metadata.client_deployments d2 ON d2.deployment_id = v2.deployment_id
                    JOIN sync_metadata.hosts h2 ON h2.host_id = d2.host_id
                   WHERE h2.cluster_name = $1::text
                   ORDER BY v2.match, v2.checked_at DESC, d2.client_name
                   LIMIT $2::integer) z) AS verify
    FROM sync_state.verify_results v
    JOIN sync_metadata.client_deployments d ON d.deployment_id = v.deployment_id
    JOIN sync_metadata.hosts h ON h.host_id = d.host_id
   WHERE h.cluster_name = $1::text`;

type DrillAggregate = {
  overdue: number;
  failing: number;
  top: { client_name: string; last_passed: number | null }[] | null;
};

/**
 * Restore drills: tenants with a backup (synced at least once, not deregistered) whose drills have begun, by the
 * age of their last passed drill (or of the start of their drills when none passed); failing = latest drill failed.
 */
const DRILLS_SQL = `
  WITH t AS (
    SELECT d.client_name, d.drills_since,
           (SELECT EXTRACT(EPOCH FROM p.started_at)::float8 FROM sync_state.restore_drills p
             WHERE p.deployment_id = d.deployment_id AND p.passed ORDER BY p.started_at DESC LIMIT 1) AS last_passed,
           (SELECT NOT l.passed FROM sync_state.restore_drills l
             WHERE l.deployment_id = d.deployment_id ORDER BY l.started_at DESC LIMIT 1) AS failing
      FROM sync_metadata.client_deployments d
      JOIN sync_metadata.hosts h ON h.host_id = d.host_id
     WHERE h.cluster_name = $1::text AND d.status <> 'deregistered' AND d.last_sync_at IS NOT NULL
  )
  SELECT count(*) FILTER (
           WHERE drills_since IS NOT NULL
             AND greatest(EXTRACT(EPOCH FROM drills_since)::float8, coalesce(last_passed, 0))
                 < EXTRACT(EPOCH FROM now())::float8 - $2::float8)::int AS overdue,
         count(*) FILTER (WHERE failing)::int AS failing,
         (SELECT json_agg(json_build_object('client_name', client_name, 'last_passed', last_passed))
            FROM (SELECT client_name, last_passed FROM t
                   ORDER BY last_passed ASC NULLS FIRST, client_name LIMIT $3::integer) y) AS top
    FROM t`;

type Snapshot = {
  readonly tenants: TenantAggregate;
  readonly cluster: ClusterAggregate;
  readonly drills: DrillAggregate;
  readonly queues: QueueCount[];
};

export function createFleetCollector(opts: FleetCollectorOptions): FleetCollector {
  const labels = opts.tenantLabels ?? parseTenantLabels(DEFAULT_TENANT_LABELS);
  const rpoFactor = opts.rpoFactor ?? 2;
  const cacheMs = opts.cacheMs ?? 5000;
  const drillMaxAge = opts.drillMaxAgeSeconds ?? 2 * 86_400;
  // LIMIT of the per-tenant lists: none wanted → 0 rows; all → every tenant.
  const limit = labels.mode === 'none' ? 0 : labels.mode === 'top' ? labels.n : 2_147_483_647;
  let cached: { at: number; snapshot: Snapshot } | undefined;
  let reading: Promise<Snapshot> | undefined;

  async function read(): Promise<Snapshot> {
    const { tenants, cluster, drills } = await withTransaction(
      opts.pool,
      async (client) => {
        const t = await client.query<TenantAggregate>(TENANTS_SQL, [opts.cluster, rpoFactor, limit]);
        const c = await client.query<ClusterAggregate>(CLUSTER_SQL, [opts.cluster, limit]);
        const d = await client.query<DrillAggregate>(DRILLS_SQL, [opts.cluster, drillMaxAge, limit]);
        return { tenants: t.rows[0]!, cluster: c.rows[0]!, drills: d.rows[0]! };
      },
      { hostId: opts.hostId, cluster: opts.cluster },
    );
    // This cluster's jobs only, as GET /api/v1/queue reports them (a shared pg-boss schema holds every cluster's).
    const queues = await clusterQueueCounts({
      pool: opts.pool,
      boss: opts.boss,
      cluster: opts.cluster,
      scope: { hostId: opts.hostId, cluster: opts.cluster },
    });
    return { tenants, cluster, drills, queues };
  }

  function apply(s: Snapshot): void {
    const m = opts.metrics;
    m.rpoFactor.set(rpoFactor);
    for (const status of STATUSES) m.tenants.set({ status }, s.tenants.by_status?.[status] ?? 0);
    m.tenantsScheduled.set(s.tenants.scheduled);
    m.tenantsRpoBreached.set(s.tenants.rpo_breached);
    m.tenantsLagMax.set(s.tenants.max_lag ?? 0);
    for (const status of RUN_STATUSES) m.recentRuns.set({ status }, s.cluster.runs?.[status] ?? 0);
    m.clusterLeaseValid.set(s.cluster.lease_valid ? 1 : 0);
    m.clusterEpoch.set(s.cluster.epoch === null ? 0 : Number(s.cluster.epoch));
    const total = Object.values(s.tenants.by_status ?? {}).reduce((a, b) => a + b, 0);
    m.tenantsVerify.set({ result: 'match' }, s.cluster.verified_match);
    m.tenantsVerify.set({ result: 'mismatch' }, s.cluster.verified_mismatch);
    m.tenantsVerify.set(
      { result: 'never' },
      Math.max(0, total - s.cluster.verified_match - s.cluster.verified_mismatch),
    );
    for (const q of s.queues) {
      for (const [state, n] of Object.entries(q.states)) m.queueDepth.set({ queue: q.queue, state }, n);
      m.queueOldestWaiting.set({ queue: q.queue }, q.oldestWaitingSeconds ?? 0);
    }
    // Per-tenant series: exactly the selected tenants, so a tenant that drops out of the top N loses its series.
    m.tenantLag.reset();
    for (const row of s.tenants.top ?? []) m.tenantLag.set({ client: row.client_name }, row.lag);
    m.tenantSeries.set(s.tenants.top?.length ?? 0);
    m.drillMaxAge.set(drillMaxAge);
    m.tenantsDrillOverdue.set(s.drills.overdue);
    m.tenantsDrillFailing.set(s.drills.failing);
    m.drillLastSuccess.reset();
    for (const row of s.drills.top ?? []) m.drillLastSuccess.set({ client: row.client_name }, row.last_passed ?? 0);
    m.verifyResult.reset();
    for (const row of s.cluster.verify ?? []) m.verifyResult.set({ client: row.client_name }, row.match ? 1 : 0);
  }

  return {
    async refresh() {
      if (cached && Date.now() - cached.at < cacheMs) return apply(cached.snapshot);
      reading ??= read().finally(() => {
        reading = undefined;
      });
      const snapshot = await reading;
      cached = { at: Date.now(), snapshot };
      apply(snapshot);
    },
  };
}
