import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss, enqueueSync } from '@owui-sync/engine/cluster';
import { createPool } from '@owui-sync/engine';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { createClusterRole, type TestClusterRole } from '../support/cluster-roles.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';
import { bearer, seedCluster, tenantName, testApi, TEST_TOKEN, type SeededCluster, type TestApi } from './support.ts';

type Job = {
  id: string;
  queue: string;
  state: string;
  client_name: string | null;
  deployment_id: string | null;
  triggered_by: string | null;
  full_sync: boolean | null;
  retry_count: number;
  retry_limit: number;
  created_on: string;
  start_after: string;
  started_on: string | null;
  completed_on: string | null;
};

/**
 * GET /api/v1/queue/jobs lists the jobs of this node's pg-boss schema, and of those only this cluster's tenants':
 * cluster A runs under its own role (schema pgboss_<A>), cluster B under the shared role (schema pgboss), which
 * also holds a stray job of one of A's tenants.
 */
describe('GET /api/v1/queue/jobs', () => {
  const db = useTestDatabase();
  let seedA: SeededCluster;
  let seedB: SeededCluster;
  let roleA: TestClusterRole;
  let bossA: PgBoss;
  let bossShared: PgBoss;
  let apiA: TestApi;
  let apiB: TestApi;
  let closedA: TestApi;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    seedA = await seedCluster(db.current, 'qjobs-a');
    seedB = await seedCluster(db.current, 'qjobs-b');
    roleA = await createClusterRole(db.current, 'qjobs-a', 'qj');
    const urlA = await clusterUrl(roleA.url);
    const urlShared = await clusterUrl(db.current.serviceUrl);
    bossA = createBoss({ connectionString: urlA.url, pooled: urlA.pooled, schema: roleA.queueSchema, max: 2 });
    bossShared = createBoss({ connectionString: urlShared.url, pooled: urlShared.pooled, max: 2 });
    await bossA.start();
    await bossShared.start();
    const send = async (boss: PgBoss, seed: SeededCluster, which: 'acme' | 'globex', triggeredBy: string) => {
      const result = await enqueueSync(
        boss,
        {
          deployment_id: seed.tenants[which],
          client_name: tenantName(seed, which),
          full_sync: which === 'globex',
          triggered_by: triggeredBy,
        },
        { cluster: seed.cluster },
      );
      return result.jobId as string;
    };
    ids.aAcme = await send(bossA, seedA, 'acme', 'scheduler');
    await new Promise((r) => setTimeout(r, 20));
    ids.aGlobex = await send(bossA, seedA, 'globex', 'api');
    ids.bAcme = await send(bossShared, seedB, 'acme', 'scheduler');
    ids.strayA = await send(bossShared, seedA, 'acme', 'stray');
    // A worker of cluster A starts the oldest job (acme's).
    const started = await bossA.fetch(SYNC_QUEUE, { batchSize: 1 });
    expect(started.map((j) => j.id)).toEqual([ids.aAcme]);

    const poolA = createPool(urlA.url, { max: 2 });
    apiA = testApi({ db: db.current, seed: seedA, boss: bossA, pool: poolA });
    closedA = testApi({
      db: db.current,
      seed: seedA,
      boss: bossA,
      pool: poolA,
      auth: { apiToken: TEST_TOKEN, publicReads: false },
    });
    apiB = testApi({ db: db.current, seed: seedB, boss: bossShared, pool: createPool(urlShared.url, { max: 2 }) });
  });

  afterAll(async () => {
    await bossA?.stop({ graceful: false });
    await bossShared?.stop({ graceful: false });
    await apiA?.pool.end();
    await apiB?.pool.end();
  });

  const list = async (api: TestApi, query = '', headers: Record<string, string> = bearer()) => {
    const res = await api.app.request(`/api/v1/queue/jobs${query}`, { headers });
    return {
      status: res.status,
      body: (await res.json()) as { jobs: Job[]; count: number; schema: string } & Record<string, unknown>,
    };
  };

  it("lists this cluster's jobs from its own pg-boss schema, newest first, with state, tenant, times and retries", async () => {
    const { status, body } = await list(apiA);
    expect(status).toBe(200);
    expect(body.cluster_name).toBe('qjobs-a');
    expect(body.schema).toBe(roleA.queueSchema);
    expect(body.schema).not.toBe('pgboss');
    expect(body.jobs.map((j) => j.id)).toEqual([ids.aGlobex, ids.aAcme]);
    expect(body.count).toBe(2);
    const [globex, acme] = body.jobs;
    expect(globex).toMatchObject({
      queue: SYNC_QUEUE,
      state: 'created',
      client_name: tenantName(seedA, 'globex'),
      deployment_id: seedA.tenants.globex,
      full_sync: true,
      triggered_by: 'api',
      retry_count: 0,
      retry_limit: 5,
      started_on: null,
      completed_on: null,
    });
    expect(acme).toMatchObject({ state: 'active', client_name: tenantName(seedA, 'acme'), triggered_by: 'scheduler' });
    expect(Date.parse(acme?.started_on ?? '')).toBeGreaterThanOrEqual(Date.parse(acme?.created_on ?? ''));
    expect(Number.isNaN(Date.parse(globex?.start_after ?? ''))).toBe(false);
  });

  it("the shared role's schema lists only its own cluster's tenants", async () => {
    const { body } = await list(apiB);
    expect(body.schema).toBe('pgboss');
    expect(body.jobs.map((j) => j.id)).toEqual([ids.bAcme]);
    expect(body.jobs.map((j) => j.id)).not.toContain(ids.strayA);
  });

  it('filters by state, tenant and queue and honours the limit', async () => {
    expect((await list(apiA, '?state=active')).body.jobs.map((j) => j.id)).toEqual([ids.aAcme]);
    expect((await list(apiA, '?state=created')).body.jobs.map((j) => j.id)).toEqual([ids.aGlobex]);
    expect((await list(apiA, '?state=failed')).body.jobs).toEqual([]);
    expect((await list(apiA, `?client_name=${tenantName(seedA, 'acme')}`)).body.jobs.map((j) => j.id)).toEqual([
      ids.aAcme,
    ]);
    expect((await list(apiA, '?queue=owui-sync-dead')).body.jobs).toEqual([]);
    expect((await list(apiA, '?limit=1')).body.jobs.map((j) => j.id)).toEqual([ids.aGlobex]);
    expect((await list(apiA, '?state=nope')).status).toBe(400);
    expect((await list(apiA, '?limit=0')).status).toBe(400);
  });

  it('needs the read scope once tokens are configured, and is read-only', async () => {
    expect((await list(closedA, '', {})).status).toBe(401);
    expect((await list(closedA, '', bearer('wrong-token'))).status).toBe(401);
    expect((await list(closedA)).status).toBe(200);
    for (const method of ['POST', 'DELETE', 'PUT']) {
      const res = await closedA.app.request('/api/v1/queue/jobs', { method, headers: bearer() });
      expect(res.status, method).toBe(404);
    }
  });
});
