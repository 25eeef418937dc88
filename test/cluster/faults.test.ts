import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss, enqueueSync } from '@owui-sync/engine/cluster';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { PGBOSS_SCHEMA, SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';

/**
 * Faults must not stall or mislabel work (real processes): a sync cut off from PostgreSQL by a restart records
 * its end and frees the tenant as soon as the database is back; a crash while a retry of the same tenant waits is
 * retried (it takes the waiting retry over), never dead-lettered unretried; a node restarted under the same name does not
 * report the lease its previous process still holds.
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
  const scratch = scratchDir('owui-cluster-faults-');

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
    // pg-boss's shortest job heartbeat deadline and a short retry delay, so crashes are noticed and retried quickly.
    await updateSyncQueue({ heartbeatSeconds: 10, retryDelay: 1 });
  });

  async function updateSyncQueue(options: { heartbeatSeconds?: number; retryDelay?: number }): Promise<void> {
    const adminBoss = new PgBoss({ connectionString: db.current.adminUrl, schema: PGBOSS_SCHEMA, migrate: false });
    adminBoss.on('error', () => undefined);
    await adminBoss.start();
    try {
      await adminBoss.updateQueue(SYNC_QUEUE, options);
    } finally {
      await adminBoss.stop({ graceful: false });
    }
  }

  type QueueJob = { state: string; retry_count: number; output: Record<string, unknown> | null };

  async function queueJob(id: string): Promise<QueueJob | undefined> {
    const r = await adminQuery(
      db.current.adminUrl,
      `SELECT state::text, retry_count, output FROM pgboss.job WHERE name = $1 AND id = $2::uuid`,
      [SYNC_QUEUE, id],
    );
    return r.rows[0] as QueueJob | undefined;
  }

  /** The sync_jobs row a worker opened for queue job `queueJobId`, once its run has claimed the tenant. */
  async function runOf(queueJobId: string): Promise<{ worker_id: string }> {
    return waitUntil(
      `the run of queue job ${queueJobId}`,
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT worker_id FROM sync_metadata.sync_jobs WHERE queue_job_id = $1 AND status = 'running'`,
          [queueJobId],
        );
        return r.rows[0] as { worker_id: string } | undefined;
      },
      20_000,
      20,
    );
  }

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  /** A tenant with a real SQLite file, its schema (admin) and its registration, owned by node-a's host row. */
  async function addTenant(cluster: string, name: string, chats: number): Promise<string> {
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, { chats });
    await provisionTenant({ adminPool, clientName: name, sqlitePath: file, serviceRole: db.current.serviceRole });
    await adminPool.query(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'e2e-host', $1, 'node-a')
       ON CONFLICT (host_id) DO NOTHING`,
      [cluster],
    );
    await adminPool.query(
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
       VALUES ($1, sync_metadata.host_identity($2, 'e2e-host', 'node-a'), $3, $4, true, 'active', 3600)`,
      [name, cluster, file, tenantSchemaName(name)],
    );
    return file;
  }

  /** Waits until a sync of `client` is running with rows committed; its sync_jobs row. */
  async function syncInProgress(client: string, timeoutMs = 30_000): Promise<{ job_id: string; worker_id: string }> {
    return waitUntil(
      `a sync of ${client} in progress`,
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT j.job_id, j.worker_id FROM sync_metadata.sync_jobs j
             JOIN sync_metadata.sync_progress p ON p.deployment_id = j.deployment_id
            WHERE j.status = 'running' AND j.client_name = $1 AND p.rows_done > 0 LIMIT 1`,
          [client],
        );
        return r.rows[0] as { job_id: string; worker_id: string } | undefined;
      },
      timeoutMs,
      20,
    );
  }

  it('a PostgreSQL restart during a sync: the run records its end once the database is back, frees the tenant, says what happened', async () => {
    const cluster = 'e2e-pg-restart-sync';
    await addTenant(cluster, 'cutco', 3000);
    const upstream = new URL(url.url);
    const proxy = new TcpProxy(upstream.hostname, Number(upstream.port || 5432));
    await proxy.start();
    try {
      const viaProxy = { DATABASE_URL: proxy.url(url.url), WORKER_CONCURRENCY: '1', BATCH_SIZE: '50' };
      // A long claim: a run that cannot record its end holds the tenant for that long.
      const claim = { SYNC_CLAIM_TTL: '30' };
      const procs = [
        startApp('node-a', 'node', env(cluster, 'node-a', { ...viaProxy, ...claim, WORKER_CONCURRENCY: '0' })),
        startApp('worker-1', 'worker', env(cluster, 'worker-1', { ...viaProxy, ...claim })),
      ];
      await Promise.all(procs.map((p) => p.waitForLog(/started in cluster/, 30_000)));
      const running = await syncInProgress('cutco');

      // "Restart": every connection reset, new ones refused for 1.5 s, then accepted again.
      await proxy.cut();
      await sleep(1500);
      await proxy.restore();
      const backAt = Date.now();

      const ended = await waitUntil(
        'the interrupted run recorded and the claim released',
        async () => {
          const r = await adminQuery(
            db.current.adminUrl,
            `SELECT j.status, j.error, j.completed_at, d.sync_claim_job_id IS DISTINCT FROM j.job_id AS released
               FROM sync_metadata.sync_jobs j JOIN sync_metadata.client_deployments d USING (deployment_id)
              WHERE j.job_id = $1`,
            [running.job_id],
          );
          const row = r.rows[0] as { status: string; error: string | null; released: boolean } | undefined;
          return row && row.status !== 'running' && row.released ? row : undefined;
        },
        10_000,
        100,
      );
      expect(Date.now() - backAt).toBeLessThan(10_000);
      expect(ended.status).toBe('failed');
      expect(ended.error).toMatch(/connection to PostgreSQL was lost during the sync/);
      expect(ended.error).not.toMatch(/stopped/);
      // The tenant syncs again at once, long before the claim would have expired.
      await waitUntil(
        'cutco synced after the restart',
        async () => {
          const r = await adminQuery(
            db.current.adminUrl,
            `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE client_name = 'cutco' AND status = 'success'`,
          );
          return r.rows[0].n > 0;
        },
        15_000,
        100,
      );
      expect(Date.now() - backAt).toBeLessThan(15_000);
      const worker = procs[1]!;
      expect(worker.running).toBe(true);
      expect(worker.raw.join('\n')).not.toMatch(/could not record the end of sync job [^"]*its claim expires/);
      for (const p of procs) p.signal('SIGTERM');
      expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);
    } finally {
      await proxy.stop();
    }
  }, 90_000);

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

  it('a crash while the retry of an earlier crash of the same tenant waits is retried, not dead-lettered', async () => {
    const cluster = 'e2e-crash-retry';
    await addTenant(cluster, 'crashco', 3000);
    // A retry delay long enough that the first crash's retry is still waiting when the second job crashes.
    await updateSyncQueue({ retryDelay: 30 });
    const boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    try {
      const extra = { WORKER_CONCURRENCY: '1', BATCH_SIZE: '50' };
      const workers = [
        startApp('worker-1', 'worker', env(cluster, 'worker-1', extra)),
        startApp('worker-2', 'worker', env(cluster, 'worker-2', extra)),
      ];
      await Promise.all(workers.map((p) => p.waitForLog(/started in cluster/, 30_000)));
      const dep = await adminQuery(
        db.current.adminUrl,
        `SELECT deployment_id::text AS id FROM sync_metadata.client_deployments WHERE client_name = 'crashco'`,
      );
      const payload = { deployment_id: dep.rows[0].id as string, client_name: 'crashco', full_sync: false };

      // First crash: its job goes to 'retry' and waits out its backoff.
      const first = await enqueueSync(boss, { ...payload, triggered_by: 'test-first' });
      const firstRun = await runOf(first.jobId!);
      const firstVictim = workers.find((w) => firstRun.worker_id.startsWith(`${w.name}@`))!;
      firstVictim.signal('SIGKILL');
      await firstVictim.exited;
      await waitUntil(
        'the first job waiting to be retried',
        async () => (await queueJob(first.jobId!))?.state === 'retry',
        20_000,
      );

      // A second job of the tenant starts meanwhile (the waiting retry leaves the tenant's active slot free) and
      // its worker crashes too.
      const second = await enqueueSync(boss, { ...payload, triggered_by: 'test-second' });
      expect(second.coalesced).toBe(false);
      const secondRun = await runOf(second.jobId!);
      const secondVictim = workers.find((w) => secondRun.worker_id.startsWith(`${w.name}@`))!;
      expect(secondVictim).not.toBe(firstVictim);
      secondVictim.signal('SIGKILL');
      await secondVictim.exited;
      const settled = await waitUntil(
        'the second job failed by its heartbeat deadline',
        async () => {
          const j = await queueJob(second.jobId!);
          return j && j.state !== 'active' ? j : undefined;
        },
        20_000,
      );

      // The second crash waits for its first retry (pg-boss counts a retry when it starts), the first job's retry
      // is merged into it, nothing is dead-lettered.
      expect(settled).toMatchObject({ state: 'retry', retry_count: 0 });
      expect(await queueJob(first.jobId!)).toMatchObject({ state: 'completed', output: { mergedInto: second.jobId } });
      const dead = await adminQuery(
        db.current.adminUrl,
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND singleton_key = 'crashco'`,
        [SYNC_DEAD_LETTER_QUEUE],
      );
      expect(dead.rows[0].n).toBe(0);
      expect(secondVictim.raw.join('\n')).toMatch(/takes over the waiting retry/);
    } finally {
      await boss.stop({ graceful: false });
      await updateSyncQueue({ retryDelay: 1 });
    }
  }, 90_000);

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
