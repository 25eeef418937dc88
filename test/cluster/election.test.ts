import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerHost,
  LeaderElector,
  readLease,
  createBoss,
  queueCounts,
  runSchedulerTick,
} from '@owui-sync/engine/cluster';
import { LeadershipLostError, silentLogger, withTransaction } from '@owui-sync/engine';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';

/** Election, fencing and scheduling in one process against the real database (the multi-process runs are in e2e). */

const CLUSTER = 'test-cluster';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
  return Date.now() - started;
}

describe('leader election and scheduling', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  let boss: PgBoss;
  const hosts: Record<string, string> = {};
  const electors: LeaderElector[] = [];

  const elector = (name: string, leaseSeconds = 3, renewSeconds = 1) => {
    const e = new LeaderElector({
      pool,
      cluster: CLUSTER,
      leaderId: `${name}@test-host`,
      hostId: hosts[name]!,
      leaseSeconds,
      renewSeconds,
      pollSeconds: 0.2,
      logger: silentLogger(),
    });
    electors.push(e);
    return e;
  };

  beforeAll(async () => {
    const url = await clusterUrl(db.current.serviceUrl);
    pool = new pg.Pool({ connectionString: url.url, max: 6 });
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    for (const name of ['node-a', 'node-b']) {
      hosts[name] = await registerHost(pool, { cluster: CLUSTER, hostname: 'test-host', nodeName: name, role: 'node' });
    }
  });

  afterAll(async () => {
    for (const e of electors) await e.stop();
    await boss?.stop({ graceful: false });
    await pool?.end();
  });

  it('elects exactly one leader and hands over at once on stop, with a higher epoch', async () => {
    const a = elector('node-a');
    const b = elector('node-b');
    await Promise.all([a.start(), b.start()]);
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    const firstEpoch = leader.epoch()!;
    const lease = await readLease(pool, CLUSTER);
    expect(lease).toMatchObject({ leaderId: leader.leaderId, epoch: firstEpoch, valid: true });

    // v_cluster_health (as the service sees it with the cluster scope) names the leader and the follower.
    const view = await withTransaction(
      pool,
      async (c) =>
        (
          await c.query(
            `SELECT node_name, hostname, leader_status, leader_lease_expires > now() AS lease_valid,
                    seconds_since_heartbeat FROM sync_metadata.v_cluster_health ORDER BY node_name`,
          )
        ).rows,
      { cluster: CLUSTER },
    );
    expect(view).toEqual([
      expect.objectContaining({ node_name: 'node-a', hostname: 'test-host', lease_valid: true }),
      expect.objectContaining({ node_name: 'node-b', hostname: 'test-host', lease_valid: true }),
    ]);
    expect(view.find((r) => r.leader_status === 'leader')?.node_name).toBe(leader.leaderId.split('@')[0]);
    expect(view.filter((r) => r.leader_status === 'follower')).toHaveLength(1);
    expect(view.every((r) => r.seconds_since_heartbeat >= 0 && r.seconds_since_heartbeat < 60)).toBe(true);

    // Renewals keep the epoch.
    await sleep(1500);
    expect(leader.epoch()).toBe(firstEpoch);
    expect(follower.isLeader()).toBe(false);

    await leader.stop();
    const took = await waitFor(() => follower.isLeader(), 2000);
    expect(took).toBeLessThan(2000);
    expect(follower.epoch()).toBe(firstEpoch + 1);
    await follower.stop();
  });

  it('fencing: once the lease has moved on, the old leader acts on nothing and steps down', async () => {
    const a = elector('node-a', 5, 2);
    await a.start();
    await waitFor(() => a.isLeader(), 3000);
    const epoch = a.epoch()!;
    // Another node takes the lease behind a's back (what happens while a is paused past its lease).
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.leader_election SET leader_id = 'node-b@test-host', leader_host_id = $2::uuid,
              epoch = epoch + 1, expires_at = now() + interval '30 seconds' WHERE cluster_name = $1`,
      [CLUSTER, hosts['node-b']],
    );
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
       VALUES ('fenced-tenant', $1::uuid, 'client_fenced_tenant', true, 'active')`,
      [hosts['node-a']],
    );
    const before = await queueCounts(pool);
    await expect(runSchedulerTick({ elector: a, boss, cluster: CLUSTER })).rejects.toBeInstanceOf(LeadershipLostError);
    expect(a.isLeader()).toBe(false);
    expect(await queueCounts(pool)).toEqual(before);
    const row = await adminQuery(
      db.current.adminUrl,
      `SELECT next_sync_at FROM sync_metadata.client_deployments WHERE client_name = 'fenced-tenant'`,
    );
    expect(row.rows[0].next_sync_at).toBeNull();
    expect((await readLease(pool, CLUSTER))?.epoch).toBe(epoch + 1);
    await a.stop();
    // Give the lease back for the next test.
    await adminQuery(db.current.adminUrl, `UPDATE sync_metadata.leader_election SET expires_at = now()`);
    await adminQuery(db.current.adminUrl, `DELETE FROM sync_metadata.client_deployments`);
  });

  it('scheduler: enqueues due tenants once, skips paused ones, spreads slots, marks silent hosts offline', async () => {
    const a = elector('node-a', 5, 2);
    await a.start();
    await waitFor(() => a.isLeader(), 3000);
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status, sync_interval)
       SELECT 't' || i, $1::uuid, 'client_t' || i, true, CASE WHEN i % 10 = 0 THEN 'paused' ELSE 'active' END, 60
         FROM generate_series(1, 100) i`,
      [hosts['node-a']],
    );
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
       VALUES ('disabled', $1::uuid, 'client_disabled', false, 'active'),
              ('gone', $1::uuid, 'client_gone', true, 'deregistered')`,
      [hosts['node-a']],
    );
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.hosts SET last_heartbeat = now() - interval '6 minutes' WHERE node_name = 'node-b'`,
    );

    // A backlog larger than one pass is cleared by consecutive passes.
    const first = await runSchedulerTick({ elector: a, boss, cluster: CLUSTER, batchSize: 50 });
    expect(first).toMatchObject({ due: 50, enqueued: 50, more: true, offlineHosts: ['node-b@test-host'] });
    const rest = await runSchedulerTick({ elector: a, boss, cluster: CLUSTER, batchSize: 50 });
    expect(rest).toMatchObject({ due: 40, enqueued: 40, coalesced: 0, more: false, offlineHosts: [] });
    const queued = await boss.findJobs<{ client_name: string; triggered_by: string; epoch: number }>(SYNC_QUEUE, {
      queued: true,
    });
    expect(queued).toHaveLength(90);
    expect(new Set(queued.map((j) => j.data.client_name)).size).toBe(90);
    expect(queued.every((j) => j.data.triggered_by === 'scheduler' && j.data.epoch === a.epoch())).toBe(true);
    expect(queued.some((j) => ['t10', 'disabled', 'gone'].includes(j.data.client_name))).toBe(false);

    // Nothing is due again until each tenant's next slot.
    const second = await runSchedulerTick({ elector: a, boss, cluster: CLUSTER });
    expect(second.due).toBe(0);

    // Slots of tenants sharing a 60 s interval are spread over it, between 30 and 90 s ahead.
    const slots = await adminQuery(
      db.current.adminUrl,
      `SELECT extract(epoch FROM next_sync_at - now())::float8 AS ahead, extract(second FROM next_sync_at)::int AS sec
         FROM sync_metadata.client_deployments WHERE next_sync_at IS NOT NULL`,
    );
    expect(slots.rows).toHaveLength(90);
    for (const r of slots.rows) expect(r.ahead).toBeGreaterThan(29);
    for (const r of slots.rows) expect(r.ahead).toBeLessThan(91);
    expect(new Set(slots.rows.map((r) => r.sec)).size).toBeGreaterThan(30);

    // A due tenant whose job is still queued coalesces instead of queueing twice.
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments SET next_sync_at = now() - interval '1 second' WHERE client_name IN ('t1', 't2')`,
    );
    const third = await runSchedulerTick({ elector: a, boss, cluster: CLUSTER });
    expect(third).toMatchObject({ due: 2, enqueued: 0, coalesced: 2 });
    await a.stop();
  });
});
