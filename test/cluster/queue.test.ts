import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPriority, createBoss, enqueueSync, queueCounts } from '@owui-sync/engine/cluster';
import { NotFoundError } from '@owui-sync/engine';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, poolerRequested } from '../support/pooler.ts';

/** The sync queue as the service role sees it: one queued and one running job per tenant, coalescing, counts. */
describe('sync queue', () => {
  const db = useTestDatabase();
  let boss: PgBoss;
  let pool: pg.Pool;
  let pooled = false;

  beforeAll(async () => {
    const url = await clusterUrl(db.current.serviceUrl);
    pooled = url.pooled;
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    pool = new pg.Pool({ connectionString: url.url, max: 2 });
  });

  afterAll(async () => {
    await boss?.stop({ graceful: false });
    await pool?.end();
  });

  const payload = (client: string) => ({
    deployment_id: randomUUID(),
    client_name: client,
    full_sync: false,
    triggered_by: 'test',
  });

  it('coalesces a second trigger with the queued job and allows one more once it runs', async () => {
    const first = await enqueueSync(boss, payload('acme'), { cluster: 'test' });
    expect(first.coalesced).toBe(false);
    expect(first.jobId).toBeTruthy();
    const second = await enqueueSync(boss, { ...payload('acme'), triggered_by: 'api' }, { cluster: 'test' });
    expect(second).toMatchObject({ coalesced: true, jobId: first.jobId });

    const other = await enqueueSync(boss, payload('globex'), { cluster: 'test' });
    expect(other.coalesced).toBe(false);

    const counts = await queueCounts(boss);
    const sync = counts.find((c) => c.queue === SYNC_QUEUE);
    expect(sync?.states.created).toBe(2);
    expect(sync?.oldestWaitingSeconds).not.toBeNull();

    // Start acme's job: a new trigger may queue exactly one more behind it.
    const fetched = await boss.fetch(SYNC_QUEUE, { batchSize: 10 });
    expect(fetched.map((j) => (j.data as { client_name: string }).client_name).sort()).toEqual(['acme', 'globex']);
    const third = await enqueueSync(boss, payload('acme'), { cluster: 'test' });
    expect(third.coalesced).toBe(false);
    const fourth = await enqueueSync(boss, payload('acme'), { cluster: 'test' });
    expect(fourth).toMatchObject({ coalesced: true, jobId: third.jobId });

    // While acme's first job is active, its queued one is not handed out (at most one running per tenant).
    expect(await boss.fetch(SYNC_QUEUE, { batchSize: 10 })).toEqual([]);
    const acme = fetched.find((j) => (j.data as { client_name: string }).client_name === 'acme');
    await boss.complete(SYNC_QUEUE, acme!.id);
    const next = await boss.fetch(SYNC_QUEUE, { batchSize: 10 });
    expect(next.map((j) => j.id)).toEqual([third.jobId]);

    const viaPool = await queueCounts(pool);
    expect(viaPool.find((c) => c.queue === SYNC_QUEUE)?.states).toMatchObject({ active: 2, completed: 1, created: 0 });
  });

  it("routes a tenant's job to its own cluster's workers only", async () => {
    for (const [cluster, name] of [
      ['cluster-a', 'alpha'],
      ['cluster-b', 'beta'],
    ] as const) {
      await adminQuery(
        db.current.adminUrl,
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
         VALUES (sync_metadata.host_identity($1, 'h', 'node-a'), 'h', $1, 'node-a')`,
        [cluster],
      );
      await adminQuery(
        db.current.adminUrl,
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
         VALUES ($2, sync_metadata.host_identity($1, 'h', 'node-a'), 'client_' || $2)`,
        [cluster, name],
      );
    }
    const ids = await adminQuery(
      db.current.adminUrl,
      `SELECT client_name, deployment_id::text AS id FROM sync_metadata.client_deployments`,
    );
    const dep = (n: string) => ids.rows.find((r: { client_name: string }) => r.client_name === n).id as string;
    // Without being told, enqueueSync finds each deployment's cluster (row-level security hides the other one).
    const a = await enqueueSync(boss, { ...payload('alpha'), deployment_id: dep('alpha') });
    const b = await enqueueSync(boss, { ...payload('beta'), deployment_id: dep('beta') });
    const only = (cluster: string) => ({
      batchSize: 10,
      minPriority: clusterPriority(cluster),
      maxPriority: clusterPriority(cluster),
    });
    expect((await boss.fetch(SYNC_QUEUE, only('cluster-c'))).map((j) => j.id)).toEqual([]);
    expect((await boss.fetch(SYNC_QUEUE, only('cluster-b'))).map((j) => j.id)).toEqual([b.jobId]);
    expect((await boss.fetch(SYNC_QUEUE, only('cluster-a'))).map((j) => j.id)).toEqual([a.jobId]);
  });

  it('LISTENs for new jobs on a direct connection and never behind a transaction pooler', async () => {
    expect(pooled).toBe(poolerRequested());
    const listening = async () =>
      (
        await adminQuery(
          db.current.adminUrl,
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND usename = $1 AND query ILIKE 'LISTEN%'`,
          [db.current.serviceRole],
        )
      ).rows[0].n as number;
    if (pooled) {
      expect(await listening()).toBe(0);
    } else {
      const started = Date.now();
      while ((await listening()) === 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 100));
      expect(await listening()).toBeGreaterThan(0);
    }
  });

  it('rejects an invalid payload before touching the queue', async () => {
    await expect(enqueueSync(boss, { ...payload('x'), deployment_id: 'nope' }, { cluster: 'test' })).rejects.toThrow();
    // A deployment nobody registered cannot be routed to any cluster.
    await expect(enqueueSync(boss, payload('ghost'))).rejects.toBeInstanceOf(NotFoundError);
  });
});
