import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss, clusterPriority } from '@owui-sync/engine/cluster';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { DRILL_QUEUE, PGBOSS_SCHEMA } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { killAllProcesses, sleep, startApp, waitUntil } from '../support/processes.ts';

/**
 * Scheduled restore drills in real processes: the leader plans each tenant's drill slot and enqueues the drill when
 * it comes, a worker runs it as an ordinary queue job and records it; a worker killed with SIGKILL in the middle of a
 * drill leaves its files behind only until the next worker starts, and never touches the live file.
 */

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('scheduled restore drills', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-cluster-drills-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
    // pg-boss's minimum heartbeat deadline, so the killed worker's drill is handed out again quickly.
    const adminBoss = new PgBoss({ connectionString: db.current.adminUrl, schema: PGBOSS_SCHEMA, migrate: false });
    adminBoss.on('error', () => undefined);
    await adminBoss.start();
    await adminBoss.updateQueue(DRILL_QUEUE, { heartbeatSeconds: 10, retryDelay: 1 });
    await adminBoss.stop({ graceful: false });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  const env = (cluster: string, role: string, extra: Record<string, string> = {}): Record<string, string> => ({
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
  });

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

  const drillsOf = async (name: string) =>
    (
      await adminPool.query<{ passed: boolean; triggered_by: string; run_by: string; queue_job_id: string | null }>(
        `SELECT r.passed, r.triggered_by, r.run_by, r.queue_job_id::text AS queue_job_id
           FROM sync_state.restore_drills r JOIN sync_metadata.client_deployments d USING (deployment_id)
          WHERE d.client_name = $1 ORDER BY r.started_at`,
        [name],
      )
    ).rows;

  it('the leader plans a slot per tenant, enqueues the drill when it comes, and a worker runs and records it', async () => {
    const cluster = 'e2e-drills';
    const file = await addTenant(cluster, 'dr1', 30);
    const before = sha(file);
    const drillDir = scratch.file('node-drills');
    const node = startApp(
      'node-a',
      'node',
      env(cluster, 'node-a', { DRILL_INTERVAL_HOURS: '24', DRILL_DIR: drillDir }),
    );
    await node.waitForLog(/started in cluster/, 30_000);
    // First the sync (due at once); then the scheduler gives the tenant its first drill slot, within the next day.
    const planned = await waitUntil(
      'drill slot planned',
      async () => {
        const r = await adminPool.query<{ next: Date | null; since: Date | null }>(
          `SELECT next_drill_at AS next, drills_since AS since FROM sync_metadata.client_deployments
            WHERE client_name = 'dr1'`,
        );
        return r.rows[0]?.next ? r.rows[0] : null;
      },
      30_000,
    );
    expect(planned.next!.getTime()).toBeGreaterThan(Date.now() - 5000);
    expect(planned.next!.getTime()).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
    expect(planned.since).not.toBeNull();
    await sleep(1500);
    expect(await drillsOf('dr1')).toEqual([]); // not drilled at once
    // The slot comes.
    await adminPool.query(
      `UPDATE sync_metadata.client_deployments SET next_drill_at = now() - interval '1 second' WHERE client_name = 'dr1'`,
    );
    const rows = await waitUntil(
      'drill recorded',
      async () => ((await drillsOf('dr1')).length ? drillsOf('dr1') : null),
      30_000,
    );
    expect(rows).toEqual([
      { passed: true, triggered_by: 'scheduler', run_by: 'node-a@e2e-host', queue_job_id: expect.any(String) },
    ]);
    const job = await waitUntil(
      'drill job completed',
      async () => {
        const r = await adminPool.query(`SELECT state::text, output FROM pgboss.job WHERE id = $1::uuid`, [
          rows[0]!.queue_job_id,
        ]);
        return r.rows[0]?.state === 'completed' ? r.rows[0] : null;
      },
      10_000,
    );
    expect(job).toMatchObject({ state: 'completed', output: { passed: true } });
    const next = await adminPool.query<{ next: Date }>(
      `SELECT next_drill_at AS next FROM sync_metadata.client_deployments WHERE client_name = 'dr1'`,
    );
    expect(next.rows[0]!.next.getTime()).toBeGreaterThan(Date.now());
    expect(sha(file)).toBe(before);
    expect(fs.readdirSync(path.join(drillDir, fs.readdirSync(drillDir)[0]!))).toEqual([]);
    node.signal('SIGTERM');
    await node.exited;
  });

  it('a worker killed with SIGKILL mid-drill leaves its files only until the next worker starts', async () => {
    const cluster = 'e2e-drills-kill';
    const file = await addTenant(cluster, 'dr2', 6000);
    const drillDir = scratch.file('kill-drills');
    const dep = await adminPool.query<{ id: string; host: string }>(
      `SELECT deployment_id::text AS id, host_id::text AS host FROM sync_metadata.client_deployments WHERE client_name = 'dr2'`,
    );
    // A sync first (the drill needs a backup): a node with drills off does it.
    const node = startApp(
      'node-k',
      'node',
      env(cluster, 'node-k', { DRILL_INTERVAL_HOURS: '0', DRILL_CONCURRENCY: '0' }),
    );
    await waitUntil(
      'tenant synced',
      async () =>
        (
          await adminPool.query(
            `SELECT 1 FROM sync_metadata.client_deployments WHERE client_name = 'dr2' AND last_sync_status = 'success'`,
          )
        ).rowCount,
      60_000,
    );
    node.signal('SIGTERM');
    await node.exited;
    const before = sha(file);

    const worker = startApp('worker-k', 'worker', env(cluster, 'worker-k', { DRILL_DIR: drillDir }));
    await worker.waitForLog(/started in cluster/, 30_000);
    const boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    try {
      await boss.send(
        DRILL_QUEUE,
        { deployment_id: dep.rows[0]!.id, client_name: 'dr2', triggered_by: 'test' },
        { singletonKey: 'dr2', priority: clusterPriority(cluster) },
      );
    } finally {
      await boss.stop({ graceful: false });
    }
    const own = path.join(drillDir, `pid-${worker.pid}`);
    await waitUntil('drill writing', () => fs.existsSync(own) && fs.readdirSync(own).length > 0, 30_000, 5);
    worker.signal('SIGKILL');
    await worker.exited;
    expect(fs.readdirSync(own).length).toBeGreaterThan(0); // killed: nothing could clean up
    expect(await drillsOf('dr2')).toEqual([]);

    const next = startApp('worker-k2', 'worker', env(cluster, 'worker-k2', { DRILL_DIR: drillDir }));
    await next.waitForLog(/removed 1 directory\(ies\) of interrupted drills/, 30_000);
    expect(fs.existsSync(own)).toBe(false);
    // The interrupted job is handed out again (its heartbeat stopped) and the new worker completes it.
    const rows = await waitUntil(
      'drill recorded',
      async () => ((await drillsOf('dr2')).length ? drillsOf('dr2') : null),
      60_000,
    );
    expect(rows).toEqual([expect.objectContaining({ passed: true, run_by: 'worker-k2@e2e-host' })]);
    expect(fs.readdirSync(path.join(drillDir, `pid-${next.pid}`))).toEqual([]);
    expect(sha(file)).toBe(before);
  });
});
