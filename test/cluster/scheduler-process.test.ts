import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { scratchDir } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, seedTenantOnNode, sleep, startApp, waitUntil } from '../support/processes.ts';

/**
 * The scheduler-only process (apps/scheduler): it registers, wins the election and enqueues a due tenant's sync,
 * but runs no worker (the job stays queued, no sync run starts) and serves no API (nothing listens on API_PORT).
 */

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('scheduler-only process', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-scheduler-process-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  it('elects itself, enqueues a due tenant once, runs no sync and serves no API; SIGTERM hands the lease back', async () => {
    const cluster = 'e2e-scheduler';
    await seedTenantOnNode({
      adminPool,
      serviceRole: db.current.serviceRole,
      cluster,
      clientName: 'acme',
      file: scratch.file('acme.db'),
    });

    const apiPort = await freePort();
    const scheduler = startApp('scheduler-a', 'scheduler', {
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: cluster,
      ROLE: 'scheduler-a',
      HOST_NAME: 'e2e-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      SCHEDULER_INTERVAL: '1',
      WORKER_CONCURRENCY: '2',
      DRILL_CONCURRENCY: '1',
      API_PORT: String(apiPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    await scheduler.waitForLog(/scheduler scheduler-a started/, 30_000);

    const lease = await waitUntil(
      'the scheduler to lead',
      async () => {
        const res = await adminPool.query(
          `SELECT leader_id FROM sync_metadata.leader_election WHERE cluster_name = $1 AND expires_at > now()`,
          [cluster],
        );
        return res.rows[0] as { leader_id: string } | undefined;
      },
      15_000,
    );
    expect(lease.leader_id).toBe('scheduler-a@e2e-host');

    const job = await waitUntil(
      "acme's sync job",
      async () => {
        const res = await adminPool.query(
          `SELECT state, data->>'client_name' AS client FROM pgboss.job WHERE name = $1`,
          [SYNC_QUEUE],
        );
        return res.rows[0] as { state: string; client: string } | undefined;
      },
      15_000,
    );
    expect(job.client).toBe('acme');

    // Several more ticks: the job is neither duplicated nor picked up, and no sync run starts.
    await sleep(3000);
    const jobs = await adminPool.query(`SELECT state FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
    expect(jobs.rows).toEqual([{ state: 'created' }]);
    const runs = await adminPool.query(`SELECT count(*)::int AS n FROM sync_metadata.sync_jobs`);
    expect(runs.rows[0].n).toBe(0);
    expect(await listening(apiPort)).toBe(false);
    expect(scheduler.raw.join('\n')).not.toMatch(/API listening|sync worker/i);

    const host = await adminPool.query(
      `SELECT role, status FROM sync_metadata.hosts WHERE cluster_name = $1 AND node_name = 'scheduler-a'`,
      [cluster],
    );
    expect(host.rows).toEqual([{ role: 'node', status: 'online' }]);

    scheduler.signal('SIGTERM');
    expect(await scheduler.exited, scheduler.tail()).toBe(0);
    const after = await adminPool.query(
      `SELECT count(*)::int AS n FROM sync_metadata.leader_election WHERE cluster_name = $1 AND expires_at > now()`,
      [cluster],
    );
    expect(after.rows[0].n).toBe(0);
  });
});
