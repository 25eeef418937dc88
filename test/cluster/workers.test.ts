import Database from 'better-sqlite3';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss, enqueueSync } from '@owui-sync/engine/cluster';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { PGBOSS_SCHEMA, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * Real nodes and workers running real syncs of real SQLite files: every tenant synced, never two syncs of one tenant
 * at once, work spread over the processes; a worker killed in the middle of a sync loses nothing.
 */

describe('sync workers with real processes', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-cluster-workers-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
    // Shorter job heartbeat deadline (pg-boss's minimum) and retry delay than production's, so a dead worker's
    // job is noticed and retried quickly.
    const adminBoss = new PgBoss({ connectionString: db.current.adminUrl, schema: PGBOSS_SCHEMA, migrate: false });
    adminBoss.on('error', () => undefined);
    await adminBoss.start();
    await adminBoss.updateQueue(SYNC_QUEUE, { heartbeatSeconds: 10, retryDelay: 1 });
    await adminBoss.stop({ graceful: false });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
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

  /** Creates the tenant's SQLite file, its schema (admin) and its registration, owned by node-a's host row. */
  async function addTenant(cluster: string, name: string, chats: number, interval = 3600): Promise<string> {
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, { chats });
    await provisionTenant({
      adminPool,
      clientName: name,
      sqlitePath: file,
      serviceRole: db.current.serviceRole,
    });
    await adminPool.query(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'e2e-host', $1, 'node-a')
       ON CONFLICT (host_id) DO NOTHING`,
      [cluster],
    );
    await adminPool.query(
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
       VALUES ($1, sync_metadata.host_identity($2, 'e2e-host', 'node-a'), $3, $4, true, 'active', $5)`,
      [name, cluster, file, tenantSchemaName(name), interval],
    );
    return file;
  }

  async function expectSameData(name: string, file: string): Promise<void> {
    const sqlite = new Database(file, { readonly: true });
    try {
      const schema = tenantSchemaName(name);
      for (const table of ['chat', 'chat_message', 'user', 'tag']) {
        const source = sqlite.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number };
        const target = await adminPool.query(`SELECT count(*)::int AS n FROM "${schema}"."${table}"`);
        expect(target.rows[0].n, `${name}.${table}`).toBe(source.n);
      }
      const sourceTitles = (sqlite.prepare('SELECT id, title FROM chat ORDER BY id').all() as { id: string }[]).map(
        (r) => JSON.stringify(r),
      );
      const targetTitles = (await adminPool.query(`SELECT id, title FROM "${schema}".chat ORDER BY id`)).rows.map((r) =>
        JSON.stringify(r),
      );
      expect(targetTitles).toEqual(sourceTitles);
    } finally {
      sqlite.close();
    }
  }

  async function diagnostics(procs: AppProcess[]): Promise<string> {
    const deployments = await adminQuery(
      db.current.adminUrl,
      `SELECT coalesce(last_sync_status, 'never') AS status, count(*)::int AS n FROM sync_metadata.client_deployments GROUP BY 1`,
    );
    const jobs = await adminQuery(
      db.current.adminUrl,
      `SELECT state::text, policy, count(*)::int AS n, min(start_after - now())::text AS wait,
              bool_or(blocked) AS blocked, count(DISTINCT singleton_key)::int AS keys, min(group_id) AS grp,
              min(retry_count) AS retries
         FROM pgboss.job GROUP BY 1, 2`,
    );
    const runs = await adminQuery(
      db.current.adminUrl,
      `SELECT status, left(coalesce(error, ''), 200) AS error, count(*)::int AS n FROM sync_metadata.sync_jobs GROUP BY 1, 2`,
    );
    const activity = await adminQuery(
      db.current.adminUrl,
      `SELECT application_name AS app, state, wait_event_type AS wt, left(query, 80) AS q, count(*)::int AS n
         FROM pg_stat_activity WHERE datname = current_database() AND usename <> 'postgres' GROUP BY 1, 2, 3, 4`,
    );
    const logs = procs.map(
      (p) =>
        `--- ${p.name}\n${p.raw
          .filter((l) => !/"level":30/.test(l))
          .slice(-8)
          .join('\n')}`,
    );
    return [
      `tenants: ${JSON.stringify(deployments.rows)}`,
      `queue: ${JSON.stringify(jobs.rows)}`,
      `runs: ${JSON.stringify(runs.rows)}`,
      `activity: ${JSON.stringify(activity.rows, null, 1)}`,
      ...logs,
    ].join('\n');
  }

  it('50 tenants, 2 nodes + 2 workers: all synced, never two runs of a tenant at once, work spread out', async () => {
    const cluster = 'e2e-workers';
    const files = new Map<string, string>();
    for (let i = 1; i <= 50; i += 1) files.set(`w${i}`, await addTenant(cluster, `w${i}`, 40));
    const procs: AppProcess[] = [
      startApp('node-a', 'node', env(cluster, 'node-a', { WORKER_CONCURRENCY: '2' })),
      startApp('node-b', 'node', env(cluster, 'node-b', { WORKER_CONCURRENCY: '2' })),
      startApp('worker-1', 'worker', env(cluster, 'worker-1', { WORKER_CONCURRENCY: '2' })),
      startApp('worker-2', 'worker', env(cluster, 'worker-2', { WORKER_CONCURRENCY: '2' })),
    ];
    await Promise.all(procs.map((p) => p.waitForLog(/started in cluster/, 30_000)));

    // Manual triggers pile on while the scheduled runs go: they coalesce or queue behind, never run alongside.
    const boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    try {
      await sleep(1500);
      const deployments = await adminQuery(
        db.current.adminUrl,
        'SELECT client_name, deployment_id::text AS id FROM sync_metadata.client_deployments',
      );
      for (const row of deployments.rows as { client_name: string; id: string }[]) {
        await enqueueSync(boss, {
          deployment_id: row.id,
          client_name: row.client_name,
          full_sync: false,
          triggered_by: 'test',
        });
      }
    } finally {
      await boss.stop({ graceful: false });
    }

    await waitUntil(
      'every tenant synced and the queue drained',
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT count(*) FILTER (WHERE last_sync_status = 'success')::int AS ok,
                  (SELECT count(*)::int FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')) AS open
             FROM sync_metadata.client_deployments`,
          [SYNC_QUEUE],
        );
        return r.rows[0].ok === 50 && r.rows[0].open === 0;
      },
      90_000,
      250,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${await diagnostics(procs)}`);
    });

    const jobs = await adminQuery(
      db.current.adminUrl,
      `SELECT client_name, worker_id, status, started_at, completed_at FROM sync_metadata.sync_jobs ORDER BY started_at`,
    );
    expect(jobs.rows.filter((j) => j.status === 'running')).toEqual([]);
    expect(jobs.rows.filter((j) => j.status === 'failed')).toEqual([]);
    // No two runs of one tenant overlap in time.
    const byTenant = new Map<string, { started_at: Date; completed_at: Date }[]>();
    for (const j of jobs.rows) byTenant.set(j.client_name, [...(byTenant.get(j.client_name) ?? []), j]);
    expect(byTenant.size).toBe(50);
    for (const [name, runs] of byTenant) {
      for (let i = 1; i < runs.length; i += 1) {
        expect(runs[i]!.started_at.getTime(), `${name} run ${i} overlaps`).toBeGreaterThanOrEqual(
          runs[i - 1]!.completed_at.getTime(),
        );
      }
    }
    // The work was spread over the processes.
    const perWorker = new Map<string, number>();
    for (const j of jobs.rows) perWorker.set(j.worker_id, (perWorker.get(j.worker_id) ?? 0) + 1);
    expect(perWorker.size).toBeGreaterThanOrEqual(3);
    for (const [name, file] of files) await expectSameData(name, file);

    for (const p of procs) p.signal('SIGTERM');
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0]);
  }, 180_000);

  it('kill -9 a worker mid-sync: the job is retried elsewhere, data ends identical, no run stuck "running"', async () => {
    const cluster = 'e2e-kill-worker';
    const file = await addTenant(cluster, 'bigco', 3000);
    const node = startApp('node-a', 'node', env(cluster, 'node-a', { WORKER_CONCURRENCY: '0' }));
    const workers = [
      startApp('worker-1', 'worker', env(cluster, 'worker-1', { WORKER_CONCURRENCY: '1', BATCH_SIZE: '50' })),
      startApp('worker-2', 'worker', env(cluster, 'worker-2', { WORKER_CONCURRENCY: '1', BATCH_SIZE: '50' })),
    ];
    await Promise.all([node, ...workers].map((p) => p.waitForLog(/started in cluster/, 30_000)));

    // Wait until one worker is in the middle of the sync (rows committed, run still going), then kill it.
    const running = await waitUntil(
      'a sync in progress',
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT j.job_id, j.worker_id FROM sync_metadata.sync_jobs j
             JOIN sync_metadata.sync_progress p ON p.deployment_id = j.deployment_id
            WHERE j.status = 'running' AND j.client_name = 'bigco' AND p.rows_done > 0 LIMIT 1`,
        );
        return r.rows[0] as { job_id: string; worker_id: string } | undefined;
      },
      30_000,
      20,
    );
    const victim = workers.find((w) => running.worker_id.startsWith(`${w.name}@`))!;
    const survivor = workers.find((w) => w !== victim)!;
    victim.signal('SIGKILL');
    await victim.exited;

    await waitUntil(
      'the tenant synced by the surviving worker',
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs
            WHERE client_name = 'bigco' AND status = 'success' AND worker_id LIKE $1`,
          [`${survivor.name}@%`],
        );
        return r.rows[0].n > 0;
      },
      90_000,
      250,
    );
    const dead = await adminQuery(
      db.current.adminUrl,
      `SELECT status, error FROM sync_metadata.sync_jobs WHERE job_id = $1`,
      [running.job_id],
    );
    expect(dead.rows[0].status).toBe('failed');
    expect(String(dead.rows[0].error)).toMatch(/stopped/);
    const stuck = await adminQuery(
      db.current.adminUrl,
      `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE status = 'running'`,
    );
    expect(stuck.rows[0].n).toBe(0);
    await expectSameData('bigco', file);
    node.signal('SIGTERM');
    survivor.signal('SIGTERM');
    expect(await Promise.all([node.exited, survivor.exited])).toEqual([0, 0]);
  }, 180_000);

  it('SIGTERM a worker mid-sync: it hands the job back and exits, another worker finishes the tenant', async () => {
    const cluster = 'e2e-term-worker';
    // Big enough that the run outlasts the 1 s shutdown grace (a shorter one would just finish, not be handed back).
    const file = await addTenant(cluster, 'termco', 20000);
    const extra = { WORKER_CONCURRENCY: '1', BATCH_SIZE: '50', SHUTDOWN_TIMEOUT: '1' };
    const node = startApp('node-a', 'node', env(cluster, 'node-a', { WORKER_CONCURRENCY: '0' }));
    const workers = [
      startApp('worker-1', 'worker', env(cluster, 'worker-1', extra)),
      startApp('worker-2', 'worker', env(cluster, 'worker-2', extra)),
    ];
    await Promise.all([node, ...workers].map((p) => p.waitForLog(/started in cluster/, 30_000)));
    const running = await waitUntil(
      'a sync in progress',
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT j.job_id, j.worker_id FROM sync_metadata.sync_jobs j
             JOIN sync_metadata.sync_progress p ON p.deployment_id = j.deployment_id
            WHERE j.status = 'running' AND j.client_name = 'termco' AND p.rows_done > 0 LIMIT 1`,
        );
        return r.rows[0] as { job_id: string; worker_id: string } | undefined;
      },
      30_000,
      20,
    );
    const victim = workers.find((w) => running.worker_id.startsWith(`${w.name}@`))!;
    const survivor = workers.find((w) => w !== victim)!;
    const termAt = Date.now();
    victim.signal('SIGTERM');
    expect(await victim.exited).toBe(0);
    expect(Date.now() - termAt).toBeLessThan(10_000);
    await victim.waitForLog(/handing back/, 1000).catch(() => undefined);

    await waitUntil(
      'the tenant synced by the other worker',
      async () => {
        const r = await adminQuery(
          db.current.adminUrl,
          `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs
            WHERE client_name = 'termco' AND status = 'success' AND worker_id LIKE $1`,
          [`${survivor.name}@%`],
        );
        return r.rows[0].n > 0;
      },
      60_000,
      250,
    );
    const handedBack = await adminQuery(
      db.current.adminUrl,
      `SELECT status FROM sync_metadata.sync_jobs WHERE job_id = $1`,
      [running.job_id],
    );
    expect(handedBack.rows[0].status).toBe('failed');
    await expectSameData('termco', file);
    node.signal('SIGTERM');
    survivor.signal('SIGTERM');
    expect(await Promise.all([node.exited, survivor.exited])).toEqual([0, 0]);
  }, 180_000);
});
