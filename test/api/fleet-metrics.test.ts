import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadApiConfig, type ApiConfig, createApp } from '@owui-sync/api';
import { nodeConfigSchema } from '@owui-sync/node';
import { loadConfig, ConfigError, createMetrics } from '@owui-sync/engine';
import { parseTenantLabels } from '@owui-sync/engine/fleet-metrics';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/**
 * Fleet figures on /metrics against a real database: counts of this node's cluster only, RPO breaches, recent runs,
 * the lease, verification results; per-tenant series as METRICS_TENANT_LABELS says, and a number of series that
 * does not grow with the number of tenants.
 */
describe('fleet metrics', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let other: SeededCluster;
  let base: TestApi;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'fleet-c');
    // Another cluster in the same database: none of its tenants may be counted.
    other = await seedCluster(db.current, 'fleet-other');
    base = testApi({ db: db.current, seed });
    const acme = seed.tenants.acme;
    // acme last succeeded 8 minutes ago (seeded); two more failures of globex within the last 10 minutes, one
    // older failure that no longer counts; acme's last verification found a difference.
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by,
                                           started_at, completed_at, error)
       SELECT $1, 'x', 'failed', 'incremental', 'scheduler', now() - make_interval(secs => s), now() - make_interval(secs => s - 1), 'e'
         FROM unnest(ARRAY[60, 120, 3600]) s`,
      [seed.tenants.globex],
    );
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_state.verify_results (deployment_id, match, sqlite_path, totals, report, checked_at, duration_seconds)
       VALUES ($1, false, '/data/acme/webui.db', '{}', '[]', now(), 1)`,
      [acme],
    );
  });

  afterAll(async () => {
    await base?.pool.end();
  });

  async function scrape(config: Partial<ApiConfig> = {}): Promise<string> {
    const app = createApp({
      ...base.deps,
      metrics: createMetrics(),
      config: { ...base.deps.config, metricsCacheMs: 0, ...config },
    });
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    return res.text();
  }

  const value = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const samples = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

  it('counts the tenants, runs, lease and verifications of this cluster only', async () => {
    const text = await scrape();
    expect(value(text, 'sync_tenants{status="active"}')).toBe(2);
    expect(value(text, 'sync_tenants{status="paused"}')).toBe(1);
    expect(value(text, 'sync_tenants{status="registered"}')).toBe(0);
    expect(value(text, 'sync_tenants_scheduled')).toBe(2);
    expect(value(text, 'sync_rpo_factor')).toBe(2);
    // acme: 8 minutes behind with a 5-minute interval; globex never succeeded and was registered just now.
    expect(value(text, 'sync_tenants_rpo_breached')).toBe(0);
    const maxLag = value(text, 'sync_tenants_lag_max_seconds')!;
    expect(maxLag).toBeGreaterThan(470);
    expect(maxLag).toBeLessThan(560);
    expect(value(text, 'sync_cluster_runs_recent{status="failed"}')).toBe(3);
    expect(value(text, 'sync_cluster_runs_recent{status="conflict"}')).toBe(0);
    expect(value(text, 'sync_cluster_lease_valid')).toBe(1);
    expect(value(text, 'sync_cluster_leader_epoch')).toBe(3);
    expect(value(text, 'sync_tenants_verify{result="mismatch"}')).toBe(1);
    expect(value(text, 'sync_tenants_verify{result="match"}')).toBe(0);
    expect(value(text, 'sync_tenants_verify{result="never"}')).toBe(2);
    expect(value(text, `sync_verify_ok{client="${tenantName(seed, 'acme')}"}`)).toBe(0);
    expect(text).toMatch(/sync_queue_oldest_waiting_seconds\{queue="owui-sync"\} \d/);
    expect(text).not.toContain(tenantName(other, 'acme'));

    // RPO_FACTOR 1: acme's 8 minutes exceed one 5-minute interval.
    expect(value(await scrape({ rpoFactor: 1 }), 'sync_tenants_rpo_breached')).toBe(1);
  });

  it('per-tenant series follow METRICS_TENANT_LABELS', async () => {
    const lagLines = (text: string) => samples(text).filter((l) => l.startsWith('sync_tenant_lag_seconds{'));
    const all = await scrape({ tenantLabels: { mode: 'all' } });
    expect(lagLines(all)).toHaveLength(3);
    expect(value(all, 'sync_metrics_tenant_series')).toBe(3);
    // Default top-50: every tenant of a small cluster.
    expect(lagLines(await scrape())).toHaveLength(3);
    const top = await scrape({ tenantLabels: { mode: 'top', n: 1 } });
    expect(lagLines(top)).toEqual([expect.stringContaining(`client="${tenantName(seed, 'acme')}"`)]);
    const none = await scrape({ tenantLabels: { mode: 'none' } });
    expect(lagLines(none)).toEqual([]);
    expect(samples(none).filter((l) => l.startsWith('sync_verify_ok{'))).toEqual([]);
    expect(value(none, 'sync_metrics_tenant_series')).toBe(0);
    // Fleet figures do not depend on the per-tenant setting.
    expect(value(none, 'sync_tenants_verify{result="mismatch"}')).toBe(1);
  });

  it('keeps the number of series flat as tenants are added, and serves scrapes from its cache', async () => {
    const before = samples(await scrape({ tenantLabels: { mode: 'top', n: 2 } }));
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status, sync_interval,
                                                    created_at)
       SELECT 'fleet-bulk-' || i, $1, 'client_fleet_bulk_' || i, true, 'active', 60, now() - interval '1 hour'
         FROM generate_series(1, 300) i`,
      [seed.hostA],
    );
    const cachedApp = createApp({
      ...base.deps,
      metrics: createMetrics(),
      config: { ...base.deps.config, tenantLabels: { mode: 'top', n: 2 }, metricsCacheMs: 60_000 },
    });
    const first = await (await cachedApp.request('/metrics')).text();
    const after = samples(first);
    expect(after.length).toBe(before.length);
    expect(value(first, 'sync_tenants{status="active"}')).toBe(302);
    // Registered an hour ago with a 1-minute interval and never synced: outside the RPO.
    expect(value(first, 'sync_tenants_rpo_breached')).toBe(300);
    expect(samples(first).filter((l) => l.startsWith('sync_tenant_lag_seconds{'))).toHaveLength(2);

    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments SET status = 'paused' WHERE client_name LIKE 'fleet-bulk-%'`,
    );
    // Within the cache lifetime the previous read is served; a collector without cache sees the change.
    expect(value(await (await cachedApp.request('/metrics')).text(), 'sync_tenants{status="paused"}')).toBe(1);
    expect(value(await scrape(), 'sync_tenants{status="paused"}')).toBe(301);
  });

  it('METRICS_TENANT_LABELS and RPO_FACTOR are validated with the accepted forms in the message', () => {
    expect(parseTenantLabels('top-50')).toEqual({ mode: 'top', n: 50 });
    expect(parseTenantLabels(' TRUE ')).toEqual({ mode: 'all' });
    expect(parseTenantLabels('false')).toEqual({ mode: 'none' });
    expect(loadApiConfig({ env: { DATABASE_URL: db.current.serviceUrl } }).tenantLabels).toEqual({
      mode: 'top',
      n: 50,
    });
    expect(loadApiConfig({ env: { DATABASE_URL: db.current.serviceUrl } }).rpoFactor).toBe(2);
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(nodeConfigSchema, { env: { DATABASE_URL: db.current.serviceUrl, ...env } });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as ConfigError).problems.join('\n');
      }
      throw new Error('expected a configuration error');
    };
    for (const bad of ['top', 'top-0', 'top-x', 'some', 'top-100000']) {
      expect(problems({ METRICS_TENANT_LABELS: bad })).toMatch(
        /METRICS_TENANT_LABELS: expected true, false or top-N with N from 1 to 10000 \(e\.g\. top-50\)/,
      );
    }
    expect(problems({ RPO_FACTOR: '0.5' })).toMatch(/RPO_FACTOR/);
    expect(problems({ RPO_FACTOR: 'often' })).toMatch(/RPO_FACTOR/);
  });
});
