import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, createMetrics, type SyncMetrics } from '@owui-sync/engine';
import { createStateManager, type StateManager } from '@owui-sync/engine/state';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { waitUntil } from '../support/processes.ts';
import { seedCluster, tenantName, testApi, type SeededCluster } from './support.ts';

/** The state manager on its own: cache-aside, TTL, cross-instance invalidation, late-committed events, metrics. */
describe('state manager', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let pool: pg.Pool;
  const managers: StateManager[] = [];

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'state-m');
    pool = createPool(db.current.serviceUrl, { max: 4 });
  });

  afterAll(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await pool?.end();
  });

  async function manager(
    host: 'a' | 'b',
    opts: { ttlSeconds?: number; now?: () => Date; metrics?: SyncMetrics } = {},
  ): Promise<StateManager> {
    const m = createStateManager({
      pool,
      cluster: seed.cluster,
      hostId: host === 'a' ? seed.hostA : seed.hostB,
      ttlSeconds: opts.ttlSeconds ?? 300,
      pollIntervalMs: 50,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      ...(opts.now ? { clock: { now: opts.now } } : {}),
    });
    managers.push(m);
    await m.start();
    return m;
  }

  const counter = async (metrics: SyncMetrics, name: string, labels = '') => {
    const text = await metrics.registry.metrics();
    const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text);
    return Number(m?.[1] ?? 0);
  };

  it('a write on one instance invalidates the other within its poll interval; own events are not re-applied', async () => {
    const metricsB = createMetrics();
    const a = await manager('a');
    const b = await manager('b', { metrics: metricsB });
    const key = `deployment.${tenantName(seed, 'globex')}`;
    expect((await b.get(key)).cached).toBe(false);
    expect((await b.get(key)).cached).toBe(true);
    expect(await counter(metricsB, 'sync_cache_misses_total')).toBe(1);
    expect(await counter(metricsB, 'sync_cache_hits_total')).toBe(1);

    await a.put(key, { sync_interval: 120 }, 'test');
    await waitUntil('b to drop its copy', async () => (await b.get(key)).cached === false, 2000, 20);
    expect((await b.get(key)).value).toMatchObject({ sync_interval: 120 });
    expect(await counter(metricsB, 'sync_cache_evictions_total', '{reason="invalidated"}')).toBe(1);

    // b's own write: dropped locally at once, and its event is not applied again when b polls.
    await b.put(key, { sync_interval: 180 }, 'test');
    expect((await b.get(key)).cached).toBe(false);
    await b.poll();
    await b.poll();
    expect((await b.get(key)).cached).toBe(true);
  });

  it('tenant changes made outside the API (syncctl, sync runs) are picked up by the next poll', async () => {
    const b = await manager('b');
    const name = tenantName(seed, 'acme');
    const key = `deployment.${name}`;
    await b.get(key);
    expect((await b.get(key)).cached).toBe(true);
    // What `syncctl client pause` does: a direct UPDATE that bumps updated_at, no cache event.
    await withConnection(db.current.adminUrl, (c) =>
      c.query(
        `UPDATE sync_metadata.client_deployments SET sync_enabled = false, status = 'paused', updated_at = now()
          WHERE client_name = $1`,
        [name],
      ),
    );
    const seen = await waitUntil(
      'b to see the pause',
      async () => {
        const r = await b.get(key);
        return (r.value as { status: string }).status === 'paused' ? r : undefined;
      },
      2000,
      20,
    );
    expect(seen.cached).toBe(false);
    // Unchanged rows stay cached across polls.
    await b.poll();
    expect((await b.get(key)).cached).toBe(true);
  });

  it('entries expire after the TTL (counted as evictions); TTL 0 disables caching', async () => {
    let now = Date.now();
    const metrics = createMetrics();
    const m = await manager('a', { ttlSeconds: 10, now: () => new Date(now), metrics });
    await m.put('ttl-key', 1, 'test');
    expect((await m.get('ttl-key')).cached).toBe(false);
    now += 9_000;
    expect(await m.get('ttl-key')).toMatchObject({ cached: true, ageSeconds: 9 });
    now += 2_000;
    expect((await m.get('ttl-key')).cached).toBe(false);
    expect(await counter(metrics, 'sync_cache_evictions_total', '{reason="expired"}')).toBe(1);

    const none = await manager('a', { ttlSeconds: 0 });
    await none.get('ttl-key');
    expect((await none.get('ttl-key')).cached).toBe(false);
    expect(none.cacheSize).toBe(0);
  });

  it('an invalidation that commits after a newer one is still applied', async () => {
    const b = await manager('b');
    await b.put('late-key', 'v1', 'test');
    expect((await b.get('late-key')).cached).toBe(false);
    expect((await b.get('late-key')).cached).toBe(true);

    const slow = new pg.Client({ connectionString: db.current.adminUrl });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      // Takes an event id now, commits later.
      await slow.query(
        `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1, 'late-key', 'invalidate')`,
        [seed.hostA],
      );
      await pool.query(
        `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1, 'other-key', 'invalidate')`,
        [seed.hostA],
      );
      await b.poll();
      expect((await b.get('late-key')).cached).toBe(true);
      await slow.query('COMMIT');
    } finally {
      await slow.end();
    }
    await waitUntil('the late event to be applied', async () => (await b.get('late-key')).cached === false, 2000, 20);
  });

  it('the service role reaches free-form state only through the functions, scoped to its cluster', async () => {
    await expect(pool.query('SELECT * FROM sync_api.state_entries')).rejects.toThrow(/permission denied/);
    // Without app.current_cluster nothing is visible and nothing can be written.
    expect((await pool.query(`SELECT * FROM sync_metadata.api_state_get('late-key')`)).rows).toEqual([]);
    await expect(pool.query(`SELECT * FROM sync_metadata.api_state_put('x', '1', 'me')`)).rejects.toThrow(
      /app.current_cluster/,
    );
    // Another cluster's node does not see this cluster's keys.
    const other = createStateManager({ pool, cluster: 'another-cluster', hostId: seed.hostA, ttlSeconds: 0 });
    await expect(other.get('late-key')).rejects.toThrow(/not set/);
  });

  it('/health answers 503 with the reason when the database cannot be reached; other reads 503, not 500', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 500 });
    try {
      const api = testApi({ db: db.current, seed, pool: dead });
      const res = await api.app.request('/health');
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unhealthy', error: expect.stringMatching(/database/) });
      const jobs = await api.app.request('/api/v1/sync/jobs');
      expect(jobs.status).toBe(503);
      expect(((await jobs.json()) as { message: string }).message).toMatch(/database cannot be reached/);
    } finally {
      await dead.end();
    }
  });
});
