import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '@owui-sync/api';
import { createMetrics } from '@owui-sync/engine';
import { createBoss } from '@owui-sync/engine/cluster';
import { clusterQueueCounts, enqueueSync, queueCounts } from '@owui-sync/engine/queue';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';
import { seedCluster, tenantName, testApi, type SeededCluster, type TestApi } from './support.ts';

/**
 * Two clusters share one database and one pg-boss schema: GET /metrics and GET /api/v1/queue of each node report
 * the same counts, those of its own cluster's jobs only.
 */
describe('queue counts per cluster', () => {
  const db = useTestDatabase();
  let seedA: SeededCluster;
  let seedB: SeededCluster;
  let boss: PgBoss;
  let apiA: TestApi;
  let apiB: TestApi;

  beforeAll(async () => {
    seedA = await seedCluster(db.current, 'qc-a');
    seedB = await seedCluster(db.current, 'qc-b');
    const url = await clusterUrl(db.current.serviceUrl);
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    const send = (seed: SeededCluster, which: 'acme' | 'globex') =>
      enqueueSync(
        boss,
        {
          deployment_id: seed.tenants[which],
          client_name: tenantName(seed, which),
          full_sync: false,
          triggered_by: 'test',
        },
        { cluster: seed.cluster },
      );
    // Cluster A: two queued jobs; cluster B: one.
    await send(seedA, 'acme');
    await send(seedA, 'globex');
    await send(seedB, 'acme');
    apiA = testApi({ db: db.current, seed: seedA, boss });
    apiB = testApi({ db: db.current, seed: seedB, boss });
  });

  afterAll(async () => {
    await boss?.stop({ graceful: false });
    await apiA?.pool.end();
    await apiB?.pool.end();
  });

  async function fromMetrics(api: TestApi): Promise<number> {
    const app = createApp({ ...api.deps, metrics: createMetrics(), config: { ...api.deps.config, metricsCacheMs: 0 } });
    const text = await (await app.request('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith(`sync_queue_jobs{queue="${SYNC_QUEUE}",state="created"}`));
    expect(line, text).toBeDefined();
    return Number(line?.split(' ').at(-1));
  }

  async function fromQueue(api: TestApi): Promise<number> {
    const res = await api.app.request('/api/v1/queue');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { queue: string; states: Record<string, number> }[] };
    return body.queues.find((q) => q.queue === SYNC_QUEUE)?.states.created ?? -1;
  }

  it("/metrics and /api/v1/queue report the same counts: their own cluster's jobs", async () => {
    expect(await fromQueue(apiA)).toBe(2);
    expect(await fromMetrics(apiA)).toBe(2);
    expect(await fromQueue(apiB)).toBe(1);
    expect(await fromMetrics(apiB)).toBe(1);
    // The schema as a whole holds all three.
    const all = await queueCounts(boss);
    expect(all.find((q) => q.queue === SYNC_QUEUE)?.states.created).toBe(3);
  });

  it('clusterQueueCounts counts the jobs of the given cluster only', async () => {
    const a = await clusterQueueCounts({ pool: apiA.pool, boss, cluster: seedA.cluster });
    expect(a.find((q) => q.queue === SYNC_QUEUE)?.states).toMatchObject({ created: 2, active: 0 });
    expect(a.find((q) => q.queue === SYNC_QUEUE)?.oldestWaitingSeconds).not.toBeNull();
    const none = await clusterQueueCounts({ pool: apiA.pool, boss, cluster: 'qc-none' });
    expect(none.find((q) => q.queue === SYNC_QUEUE)?.states.created).toBe(0);
  });
});
