import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss } from '@owui-sync/engine/cluster';
import { createPool } from '@owui-sync/engine';
import { install } from '@owui-sync/schema';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';
import { jsonHeaders, seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/** A node whose job queue is gone: /health says degraded and why, triggers answer 503, and both recover. */
describe('API with a missing job queue', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let boss: PgBoss;
  let api: TestApi;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'queue-health');
    const url = await clusterUrl(db.current.serviceUrl);
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    api = testApi({ db: db.current, seed, boss, pool: createPool(url.url, { max: 4 }) });
  });

  afterAll(async () => {
    await boss?.stop({ graceful: false });
    await api?.pool.end();
  });

  const health = async () => {
    const res = await api.app.request('/health');
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const trigger = async () => {
    const res = await api.app.request('/api/v1/sync/trigger', {
      method: 'POST',
      headers: jsonHeaders(),
      body: JSON.stringify({ client_name: tenantName(seed, 'acme'), full_sync: false }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('reports degraded with the reason and answers 503 until the queue is back', async () => {
    expect((await health()).body.status).toBe('healthy');
    await adminQuery(db.current.adminUrl, "DELETE FROM pgboss.job; SELECT pgboss.delete_queue('owui-sync')");

    const degraded = await health();
    expect(degraded.status).toBe(200);
    expect(degraded.body).toMatchObject({ status: 'degraded', cluster_name: 'queue-health' });
    expect(degraded.body.error).toMatch(/queue owui-sync does not exist in schema pgboss; run syncctl init/);

    const refused = await trigger();
    expect(refused.status).toBe(503);
    expect(refused.body.message).toMatch(/job queue is unavailable: Queue owui-sync does not exist/);

    // syncctl init (install) recreates it.
    const { serviceRole, context } = db.current;
    await install({ adminUrl: db.current.adminUrl, serviceRole, groupRole: context.groupRole });
    expect((await trigger()).status).toBe(200);
    expect((await health()).body.status).toBe('healthy');
  });
});
