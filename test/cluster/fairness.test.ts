import { copyFileSync, rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * Fairness with real processes: two slots, two big tenants whose every run is a full sync of a 125 MB database (several times a small tenant's interval
 * even on a quiet machine)
 * (their progress is reset after each run, so the next scheduled run starts over), a tenant whose file is gone, and
 * small tenants due every few seconds. The big tenants' recorded file size (above LARGE_TENANT_MB) puts them in the `large` group, capped at
 * one running job, so one slot always serves the small tenants; the failing tenant retries on its own job.
 */

const SMALL_INTERVAL = 5;
const SLOTS_PER_WORKER = 1;

describe('fairness: slow and failing tenants do not hold up the others', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-cluster-fairness-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  function env(cluster: string, role: string, extra: Record<string, string>): Record<string, string> {
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
      LARGE_TENANT_MB: '10',
      LARGE_TENANT_CONCURRENCY: '1',
      FAILING_TENANT_CONCURRENCY: '1',
      API_PORT: '0',
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...extra,
    };
  }

  async function register(cluster: string, name: string, file: string, interval: number): Promise<void> {
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
       VALUES ($1, sync_metadata.host_identity($2, 'e2e-host', 'node-a'), $3, $4, true, 'active', $5)`,
      [name, cluster, file, tenantSchemaName(name), interval],
    );
  }

  it('small tenants stay within their interval and keep their retries while big and failing ones run', async () => {
    const cluster = 'e2e-fairness';
    const bigTemplate = scratch.file('big-template.db');
    generateOpenWebUIDatabase({
      path: bigTemplate,
      era: '0.11.0',
      scale: {
        users: 50,
        chats: 9000,
        chatBodyBytes: 8192,
        chatMessagesPerChat: 2,
        channels: 10,
        channelMessages: 90_000,
        tags: 500,
        files: 200,
        rowsPerTable: 50,
      },
      seed: 8,
      journalMode: 'wal',
    });
    const big = ['big1', 'big2'];
    for (const name of big) {
      const file = scratch.file(`${name}.db`);
      copyFileSync(bigTemplate, file);
      await register(cluster, name, file, 2);
    }
    const small = Array.from({ length: 4 }, (_, i) => `small${i + 1}`);
    for (const name of small) {
      const file = scratch.file(`${name}.db`);
      makeMiniOpenWebUI(file, { chats: 20 });
      await register(cluster, name, file, SMALL_INTERVAL);
    }
    const failingFile = scratch.file('failing1.db');
    makeMiniOpenWebUI(failingFile, { chats: 5 });
    await register(cluster, 'failing1', failingFile, SMALL_INTERVAL);
    rmSync(failingFile);

    const procs: AppProcess[] = [
      startApp('node-a', 'node', env(cluster, 'node-a', { WORKER_CONCURRENCY: '0' })),
      startApp('worker-1', 'worker', env(cluster, 'worker-1', { WORKER_CONCURRENCY: String(SLOTS_PER_WORKER) })),
      startApp('worker-2', 'worker', env(cluster, 'worker-2', { WORKER_CONCURRENCY: String(SLOTS_PER_WORKER) })),
    ];
    await Promise.all(procs.map((p) => p.waitForLog(/started in cluster/, 30_000)));

    // Warm-up: every healthy tenant synced once, which records each file's size.
    await waitUntil(
      'every healthy tenant synced once',
      async () => {
        const r = await adminPool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM sync_metadata.client_deployments
            WHERE last_sync_status = 'success' AND client_name <> 'failing1'`,
        );
        return r.rows[0]!.n === big.length + small.length;
      },
      180_000,
      500,
    );

    // From here every run of a big tenant is a full sync again: its progress is forgotten once a run ends.
    const lastBigRun = new Map<string, string>();
    const resetBig = async () => {
      const r = await adminPool.query<{ client_name: string; at: string; deployment_id: string; claimed: boolean }>(
        `SELECT client_name, last_sync_at::text AS at, deployment_id::text,
                coalesce(sync_claim_expires_at > now(), false) AS claimed
           FROM sync_metadata.client_deployments WHERE client_name = ANY($1::text[])`,
        [big],
      );
      for (const row of r.rows) {
        if (row.claimed || lastBigRun.get(row.client_name) === row.at) continue;
        lastBigRun.set(row.client_name, row.at);
        await adminPool.query('DELETE FROM sync_metadata.sync_progress WHERE deployment_id = $1::uuid', [
          row.deployment_id,
        ]);
      }
    };
    await resetBig();
    const windowStart = new Date();
    let worstSmallLag = 0;
    let worstTenant = '';
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await resetBig();
      const r = await adminPool.query<{ client_name: string; lag: number }>(
        `SELECT client_name, extract(epoch FROM now() - last_sync_at)::float8 AS lag
           FROM sync_metadata.client_deployments WHERE client_name = ANY($1::text[])`,
        [small],
      );
      for (const row of r.rows) {
        if (row.lag > worstSmallLag) [worstSmallLag, worstTenant] = [row.lag, row.client_name];
      }
      await sleep(250);
    }

    const runs = await adminPool.query<{ client_name: string; status: string; sync_type: string; n: number }>(
      `SELECT client_name, status, sync_type, count(*)::int AS n FROM sync_metadata.sync_jobs
        WHERE started_at >= $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [windowStart],
    );
    // How many big runs overlapped at worst (the cap is one).
    const bigRuns = await adminPool.query<{ overlap: number }>(
      `SELECT coalesce(max(n), 0)::int AS overlap FROM (
         SELECT (SELECT count(*) FROM sync_metadata.sync_jobs o
                  WHERE o.client_name = ANY($1::text[]) AND o.started_at <= j.started_at
                    AND coalesce(o.completed_at, now()) > j.started_at) AS n
           FROM sync_metadata.sync_jobs j WHERE j.client_name = ANY($1::text[]) AND j.started_at >= $2) x`,
      [big, windowStart],
    );
    const summary = `${JSON.stringify(runs.rows)}; big runs at once: ${bigRuns.rows[0]!.overlap}`;
    // The big tenants really were slow and kept running: full syncs during the window, none dropped.
    const bigFull = runs.rows.filter((r) => big.includes(r.client_name) && r.sync_type === 'full');
    expect(
      bigFull.reduce((a, r) => a + r.n, 0),
      summary,
    ).toBeGreaterThanOrEqual(1);
    const slowest = await adminPool.query<{ s: number }>(
      `SELECT max(duration_seconds)::float8 AS s FROM sync_metadata.sync_jobs WHERE client_name = ANY($1::text[])`,
      [big],
    );
    // Without the cap both slots would be busy with big runs for longer than a small tenant's interval.
    expect(slowest.rows[0]!.s, 'a big run takes longer than a small interval').toBeGreaterThan(SMALL_INTERVAL);

    // The large group's cap held across the two workers (a run counts itself: 1 means none overlapped).
    expect(bigRuns.rows[0]!.overlap, summary).toBeLessThanOrEqual(1);

    // Small tenants were never left waiting past two of their intervals.
    expect(worstSmallLag, `${worstTenant} waited ${worstSmallLag.toFixed(1)} s; runs ${summary}`).toBeLessThan(
      2 * SMALL_INTERVAL,
    );

    // The failing tenant failed on its own, on its own jobs in the failing group (a retry waiting out its backoff
    // is taken over by the tenant's next scheduled job), and no healthy tenant lost a run or spent a retry.
    const failed = runs.rows.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.client_name)).toEqual(['failing1']);
    expect(failed[0]!.n).toBeGreaterThanOrEqual(2);
    const queue = await adminPool.query<{ key: string; retries: number; grp: string | null }>(
      `SELECT singleton_key AS key, max(retry_count)::int AS retries, max(group_id) AS grp
         FROM pgboss.job WHERE name = $1 AND created_on >= $2 GROUP BY 1`,
      [SYNC_QUEUE, windowStart],
    );
    const byKey = new Map(queue.rows.map((r) => [r.key, r]));
    expect(byKey.get('failing1')?.grp).toBe('failing');
    for (const name of [...small, ...big]) expect(byKey.get(name)?.retries ?? 0, name).toBe(0);
    for (const name of big) expect(byKey.get(name)?.grp, name).toBe('large');
    for (const name of small) expect(byKey.get(name)?.grp ?? null, name).toBeNull();
  }, 300_000);
});
