import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss } from '@owui-sync/engine/cluster';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * Two real node processes sharing one database, with a 3 s lease renewed every second: one leader at a time,
 * takeover after kill -9 within lease + heartbeat, immediate handover on SIGTERM, a restarted node stays follower
 * while the lease is valid, and a leader frozen past its lease (SIGSTOP) enqueues nothing once it wakes.
 */

const LEASE = 3;
const HEARTBEAT = 1;

type Health = { status: string; is_leader: boolean; leader_id: string | null; node_id: string };

async function health(port: number): Promise<Health | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return (await res.json()) as Health;
  } catch {
    return null;
  }
}

describe('leader failover with real processes', () => {
  const db = useTestDatabase();
  let url: ClusterUrl;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
  });

  afterAll(async () => {
    await killAllProcesses();
  });

  async function lease(cluster: string) {
    const res = await adminQuery(
      db.current.adminUrl,
      `SELECT leader_id, epoch::int AS epoch, expires_at > now() AS valid, acquired_at
         FROM sync_metadata.leader_election WHERE cluster_name = $1`,
      [cluster],
    );
    return res.rows[0] as { leader_id: string; epoch: number; valid: boolean; acquired_at: Date } | undefined;
  }

  async function node(cluster: string, role: string, port: number): Promise<AppProcess> {
    const p = startApp(role, 'node', {
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: cluster,
      ROLE: role,
      HOST_NAME: 'e2e-host',
      LEASE_DURATION: String(LEASE),
      HEARTBEAT_INTERVAL: String(HEARTBEAT),
      SCHEDULER_INTERVAL: '1',
      WORKER_CONCURRENCY: '0',
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    await p.waitForLog(/API listening/, 30_000);
    return p;
  }

  it('one leader; kill -9 → takeover within lease + heartbeat; restarted node stays follower; SIGTERM → handover < 2 s', async () => {
    const cluster = 'e2e-failover';
    const ports = { 'node-a': await freePort(), 'node-b': await freePort() };
    const procs: Record<string, AppProcess> = {
      'node-a': await node(cluster, 'node-a', ports['node-a']),
      'node-b': await node(cluster, 'node-b', ports['node-b']),
    };
    const first = await waitUntil('a leader', async () => (await lease(cluster))?.valid && lease(cluster), 10_000);
    const leaderName = first.leader_id.split('@')[0] as 'node-a' | 'node-b';
    const followerName = leaderName === 'node-a' ? 'node-b' : 'node-a';

    // Exactly one /health says leader, and it is the lease's.
    const views = await Promise.all([health(ports['node-a']), health(ports['node-b'])]);
    expect(views.map((v) => v?.is_leader).filter(Boolean)).toHaveLength(1);
    expect(views.find((v) => v?.is_leader)?.node_id).toBe(leaderName);
    expect(views.every((v) => v?.leader_id === first.leader_id)).toBe(true);

    // kill -9 the leader: the follower takes over once the lease runs out.
    const killedAt = Date.now();
    procs[leaderName]!.signal('SIGKILL');
    await procs[leaderName]!.exited;
    const second = await waitUntil(
      'takeover',
      async () => {
        const l = await lease(cluster);
        return l?.valid && l.leader_id.startsWith(followerName) ? l : undefined;
      },
      15_000,
      50,
    );
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThanOrEqual((LEASE + HEARTBEAT + 1) * 1000);
    expect(second.epoch).toBe(first.epoch + 1);
    expect((await health(ports[followerName]))?.is_leader).toBe(true);

    // Restart the old leader: it stays follower while the new lease is valid.
    procs[leaderName] = await node(cluster, leaderName, ports[leaderName]);
    for (let i = 0; i < 6; i += 1) {
      await sleep(500);
      const l = await lease(cluster);
      expect(l).toMatchObject({ leader_id: second.leader_id, epoch: second.epoch, valid: true });
      expect((await health(ports[leaderName]))?.is_leader).toBe(false);
    }

    // SIGTERM the leader: it releases the lease and the other node takes over within 2 s.
    const termAt = Date.now();
    procs[followerName]!.signal('SIGTERM');
    const third = await waitUntil(
      'handover',
      async () => {
        const l = await lease(cluster);
        return l?.valid && l.leader_id.startsWith(leaderName) ? l : undefined;
      },
      5_000,
      25,
    );
    expect(Date.now() - termAt).toBeLessThan(2000);
    expect(third.epoch).toBe(second.epoch + 1);
    expect(await procs[followerName]!.exited).toBe(0);
    procs[leaderName]!.signal('SIGTERM');
    expect(await procs[leaderName]!.exited).toBe(0);
  });

  it('fencing: a leader frozen in the middle of a scheduler pass commits nothing after it loses the lease', async () => {
    const cluster = 'e2e-midtick';
    const ports = { 'node-a': await freePort(), 'node-b': await freePort() };
    const a = await node(cluster, 'node-a', ports['node-a']);
    const b = await node(cluster, 'node-b', ports['node-b']);
    const first = await waitUntil('a leader', async () => (await lease(cluster))?.valid && lease(cluster), 10_000);
    const leader = first.leader_id.startsWith('node-a') ? a : b;
    const blocker = new pg.Client({ connectionString: db.current.adminUrl });
    await blocker.connect();
    try {
      // Hold the tenants table so the leader's next pass stops inside its fenced transaction, then freeze it there.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE sync_metadata.client_deployments IN SHARE ROW EXCLUSIVE MODE');
      await blocker.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
         SELECT 'mid' || i, sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'client_mid' || i, true, 'active'
           FROM generate_series(1, 3) i`,
        [cluster],
      );
      await waitUntil(
        'the leader blocked inside its scheduler pass',
        async () => {
          const r = await adminQuery(
            db.current.adminUrl,
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%due AS (%'`,
          );
          return r.rows[0].n > 0;
        },
        10_000,
        50,
      );
      leader.signal('SIGSTOP');
      await blocker.query('COMMIT');
      // The other node takes over once the frozen transaction is cut off and the lease has run out.
      const second = await waitUntil(
        'takeover',
        async () => {
          const l = await lease(cluster);
          return l?.valid && l.epoch > first.epoch ? l : undefined;
        },
        20_000,
        50,
      );
      // Keep the new leader from scheduling so anything queued now could only come from the woken one.
      const other = leader === a ? b : a;
      other.signal('SIGSTOP');
      const logIndex = leader.lines.length;
      leader.signal('SIGCONT');
      await leader.waitForLog(/stepped down|leadership lost|scheduler tick failed/, 10_000, logIndex);
      await sleep(500);
      const jobs = await adminQuery(
        db.current.adminUrl,
        `SELECT (data->>'epoch')::int AS epoch, created_on FROM pgboss.job WHERE name = $1 AND data->>'client_name' LIKE 'mid%'`,
        [SYNC_QUEUE],
      );
      const stale = jobs.rows.filter((j: { epoch: number }) => j.epoch === first.epoch);
      expect(stale).toEqual([]);
      expect(second.epoch).toBe(first.epoch + 1);
      other.signal('SIGCONT');
    } finally {
      await blocker.end().catch(() => undefined);
      a.signal('SIGCONT');
      b.signal('SIGCONT');
      a.signal('SIGTERM');
      b.signal('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
  });

  it('fencing: a leader frozen past its lease enqueues nothing after SIGCONT and steps down', async () => {
    const cluster = 'e2e-fencing';
    const ports = { 'node-a': await freePort(), 'node-b': await freePort() };
    const a = await node(cluster, 'node-a', ports['node-a']);
    const b = await node(cluster, 'node-b', ports['node-b']);
    // Five tenants due every second, owned by node-a's host row.
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status, sync_interval)
       SELECT 'fence' || i, sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'client_fence' || i, true, 'active', 1
         FROM generate_series(1, 5) i`,
      [cluster],
    );
    // The test consumes jobs itself (the nodes run no workers) and records which epoch enqueued each.
    const boss: PgBoss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    const seen: { epoch: number; createdOn: Date }[] = [];
    let consuming = true;
    const consumer = (async () => {
      while (consuming) {
        const jobs = await boss
          .fetch<{ epoch?: number }>(SYNC_QUEUE, { batchSize: 50, includeMetadata: true })
          .catch(() => []);
        for (const j of jobs) seen.push({ epoch: j.data.epoch ?? 0, createdOn: j.createdOn });
        if (jobs.length)
          await boss
            .complete(
              SYNC_QUEUE,
              jobs.map((j) => j.id),
            )
            .catch(() => undefined);
        await sleep(100);
      }
    })();
    try {
      const first = await waitUntil('a leader', async () => (await lease(cluster))?.valid && lease(cluster), 10_000);
      const leader = first.leader_id.startsWith('node-a') ? a : b;
      await waitUntil('jobs from the first leader', () => seen.some((s) => s.epoch === first.epoch), 10_000);

      leader.signal('SIGSTOP');
      const second = await waitUntil(
        'takeover from the frozen leader',
        async () => {
          const l = await lease(cluster);
          return l?.valid && l.epoch > first.epoch ? l : undefined;
        },
        15_000,
        50,
      );
      // Freeze the new leader too, make every tenant due, and wake the stale one: it alone could act now, and it
      // must not (it can only lead again, with a new epoch, once the frozen new leader's lease has run out).
      const other = leader === a ? b : a;
      other.signal('SIGSTOP');
      await adminQuery(
        db.current.adminUrl,
        `UPDATE sync_metadata.client_deployments SET next_sync_at = now() - interval '1 second'`,
      );
      const logIndex = leader.lines.length;
      leader.signal('SIGCONT');
      await leader.waitForLog(/stepped down/, 10_000, logIndex);
      const third = await waitUntil(
        'the woken node to lead again under a new epoch',
        async () => {
          const l = await lease(cluster);
          return l?.valid && l.epoch > second.epoch ? l : undefined;
        },
        15_000,
        50,
      );
      expect(third.leader_id).toBe(first.leader_id);
      expect(third.epoch).toBe(second.epoch + 1);
      const otherIndex = other.lines.length;
      other.signal('SIGCONT');
      await other.waitForLog(/stepped down/, 10_000, otherIndex);
      await sleep(2000);

      // No job was enqueued under an epoch after that epoch's lease had passed to another node.
      const staleFirst = seen.filter((s) => s.epoch === first.epoch && s.createdOn > second.acquired_at);
      const staleSecond = seen.filter((s) => s.epoch === second.epoch && s.createdOn > third.acquired_at);
      expect(staleFirst).toEqual([]);
      expect(staleSecond).toEqual([]);
      expect(seen.filter((s) => s.epoch === second.epoch).length).toBeGreaterThan(0);
      await waitUntil('jobs from the third epoch', () => seen.some((s) => s.epoch === third.epoch), 5000);
      expect(await lease(cluster)).toMatchObject({ epoch: third.epoch, valid: true });
      const otherPort = other === a ? ports['node-a'] : ports['node-b'];
      expect((await health(otherPort))?.is_leader).toBe(false);
    } finally {
      consuming = false;
      await consumer;
      await boss.stop({ graceful: false });
      a.signal('SIGTERM');
      b.signal('SIGTERM');
      await Promise.all([a.exited, b.exited]);
    }
  });
});
