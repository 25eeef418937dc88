import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * Faults must not stall or mislabel work (real processes): a node restarted under the same name does not report
 * the lease its previous process still holds.
 */

type Health = { is_leader: boolean; leader_id: string | null; leader_epoch: number | null; role: string };

async function health(port: number): Promise<Health | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return (await res.json()) as Health;
  } catch {
    return null;
  }
}

async function leaderGauge(port: number): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^sync_is_leader (\d+)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

describe('faults with real processes', () => {
  const db = useTestDatabase();
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
  });

  function env(cluster: string, role: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: cluster,
      ROLE: role,
      HOST_NAME: 'e2e-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      SCHEDULER_INTERVAL: '1',
      QUEUE_SUPERVISE_INTERVAL: '1',
      SYNC_CLAIM_TTL: '5',
      API_PORT: '0',
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...extra,
    };
  }

  async function lease(cluster: string) {
    const res = await adminQuery(
      db.current.adminUrl,
      `SELECT leader_id, epoch::int AS epoch, expires_at > now() AS valid
         FROM sync_metadata.leader_election WHERE cluster_name = $1`,
      [cluster],
    );
    return res.rows[0] as { leader_id: string; epoch: number; valid: boolean } | undefined;
  }

  it('/health of a node restarted under the same name does not claim the lease its previous process holds', async () => {
    const cluster = 'e2e-restarted-name';
    const port = await freePort();
    // A long lease, so the previous process's lease outlives the restart by seconds.
    const nodeEnv = env(cluster, 'node-a', { LEASE_DURATION: '8', WORKER_CONCURRENCY: '0', API_PORT: String(port) });
    let node: AppProcess = startApp('node-a', 'node', nodeEnv);
    await node.waitForLog(/API listening/, 30_000);
    const first = await waitUntil(
      'node-a leading',
      async () => (await health(port))?.is_leader && lease(cluster),
      10_000,
    );
    expect((await health(port))?.leader_epoch).toBe(first.epoch);

    node.signal('SIGKILL');
    await node.exited;
    node = startApp('node-a', 'node', nodeEnv);
    await node.waitForLog(/API listening/, 30_000);
    // The old lease (same leader_id, same host) is still valid: this process does not hold it.
    let checked = 0;
    for (;;) {
      const l = await lease(cluster);
      const view = await health(port);
      const gauge = await leaderGauge(port);
      const still = await lease(cluster);
      if (!l?.valid || !still?.valid || still.epoch !== first.epoch) break;
      expect(view).toMatchObject({ is_leader: false, role: 'follower', leader_id: first.leader_id });
      expect(gauge).toBe(0);
      checked += 1;
      await sleep(200);
    }
    expect(checked).toBeGreaterThan(3);
    // Once it lapses, the new process takes the lease with the next epoch and says so.
    const second = await waitUntil(
      'the restarted node leading',
      async () => {
        const view = await health(port);
        return view?.is_leader ? view : undefined;
      },
      15_000,
      100,
    );
    expect(second.leader_epoch).toBe(first.epoch + 1);
    expect(await leaderGauge(port)).toBe(1);
    node.signal('SIGTERM');
    expect(await node.exited).toBe(0);
  }, 60_000);
});
