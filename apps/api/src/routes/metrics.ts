import { errorMessage } from '@owui-sync/engine';
import { createFleetCollector } from '@owui-sync/engine/fleet-metrics';
import type { ApiApp, RouteContext } from '../context.ts';

/**
 * GET /metrics: this process's counters and histograms plus the cluster's fleet figures (tenants by status, RPO
 * breaches, recent runs by outcome, queue depth and age, the lease, verification results), read from the
 * database at scrape time; per-tenant series only as METRICS_TENANT_LABELS allows.
 */
export function registerMetricsRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const authz = deps.config.auth ?? {};
  const fleet = createFleetCollector({
    pool: deps.pool,
    boss: deps.boss,
    cluster: deps.cluster,
    hostId: deps.hostId,
    metrics: deps.metrics,
    ...(deps.config.tenantLabels ? { tenantLabels: deps.config.tenantLabels } : {}),
    ...(deps.config.rpoFactor ? { rpoFactor: deps.config.rpoFactor } : {}),
    ...(deps.config.drillMaxAgeSeconds ? { drillMaxAgeSeconds: deps.config.drillMaxAgeSeconds } : {}),
    ...(deps.config.metricsCacheMs !== undefined ? { cacheMs: deps.config.metricsCacheMs } : {}),
  });

  // Prometheus text, not JSON: a plain route, documented by hand.
  app.get('/metrics', auth.require('read', { public: authz.publicMetrics ?? true }), async (c) => {
    if (deps.config.enableMetrics === false) {
      return c.json({ error: 'not_found', message: 'metrics are disabled on this node (ENABLE_METRICS=false)' }, 404);
    }
    await fleet.refresh().catch((error: unknown) => {
      deps.metrics.loopErrors.inc({ loop: 'metrics-scrape' });
      deps.logger.warn({ err: error }, `metrics: fleet gauges not refreshed: ${errorMessage(error)}`);
    });
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { 'Content-Type': deps.metrics.registry.contentType });
  });
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/metrics',
    tags: ['health'],
    summary: 'Prometheus metrics (text exposition format); 404 when ENABLE_METRICS=false',
    responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
  });
}
