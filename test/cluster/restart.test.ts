import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '../../packages/engine/src/local-postgres.ts';
import { install, SYNC_QUEUE } from '../../packages/schema/src/index.ts';
import { adminQuery, withDatabase, withUser } from '../support/db.ts';
import { clusterUrl, stopPooler } from '../support/pooler.ts';
import { freePort, killAllProcesses, sleep, startApp, waitUntil, type AppProcess } from '../support/processes.ts';

/**
 * PostgreSQL restarting under a running cluster (a dedicated server on its own port, never the shared one): every
 * process reconnects and carries on within 30 s, with no manual step and no process exiting.
 */

const CLUSTER = 'e2e-restart';

describe('PostgreSQL restart under a running cluster', () => {
  let server: LocalPostgres;
  let dataDir: string;
  let port: number;
  let adminUrl: string;
  let serviceUrl: string;

  beforeAll(async () => {
    const context = inject('pg');
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'owui-restart-pg-'));
    port = await freePort();
    server = await startLocalPostgres({ dataDir, port });
    await adminQuery(server.adminUrl, 'CREATE DATABASE owui_restart');
    adminUrl = withDatabase(server.adminUrl, 'owui_restart');
    await install({ adminUrl, serviceRole: context.serviceRole, servicePassword: context.servicePassword });
    serviceUrl = withUser(adminUrl, context.serviceRole, context.servicePassword);
  }, 180_000);

  afterAll(async () => {
    await killAllProcesses();
    stopPooler();
    await server?.stop().catch(() => undefined);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('every process reconnects and the cluster carries on within 30 s', async () => {
    const url = await clusterUrl(serviceUrl);
    const env = (role: string, apiPort: number) => ({
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: CLUSTER,
      ROLE: role,
      HOST_NAME: 'e2e-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      SCHEDULER_INTERVAL: '1',
      WORKER_CONCURRENCY: '0',
      API_PORT: String(apiPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    const ports = [await freePort(), await freePort()] as const;
    const nodes: AppProcess[] = [
      startApp('node-a', 'node', env('node-a', ports[0])),
      startApp('node-b', 'node', env('node-b', ports[1])),
    ];
    await Promise.all(nodes.map((n) => n.waitForLog(/API listening/, 30_000)));
    await adminQuery(
      adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status, sync_interval)
       SELECT 'r' || i, sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'client_r' || i, true, 'active', 1
         FROM generate_series(1, 3) i`,
      [CLUSTER],
    );
    await waitUntil(
      'the leader to schedule',
      async () => (await adminQuery(adminUrl, 'SELECT count(*)::int AS n FROM pgboss.job')).rows[0].n > 0,
      15_000,
    );

    await server.stop();
    await sleep(2000);
    server = await startLocalPostgres({ dataDir, port });
    const restartedAt = (await adminQuery(adminUrl, 'SELECT now() AS t')).rows[0].t as Date;
    await adminQuery(adminUrl, `DELETE FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);

    const recovered = Date.now();
    await waitUntil(
      'a renewed lease, fresh heartbeats from both nodes, healthy APIs and new scheduled jobs',
      async () => {
        const lease = await adminQuery(
          adminUrl,
          `SELECT expires_at > now() AND renewed_at > $2 AS ok FROM sync_metadata.leader_election WHERE cluster_name = $1`,
          [CLUSTER, restartedAt],
        );
        const beats = await adminQuery(
          adminUrl,
          `SELECT count(*)::int AS n FROM sync_metadata.hosts WHERE cluster_name = $1 AND last_heartbeat > $2 AND status = 'online'`,
          [CLUSTER, restartedAt],
        );
        const jobs = await adminQuery(adminUrl, `SELECT count(*)::int AS n FROM pgboss.job WHERE created_on > $1`, [
          restartedAt,
        ]);
        const health = await Promise.all(
          ports.map((p) =>
            fetch(`http://127.0.0.1:${p}/health`)
              .then((r) => r.status)
              .catch(() => 0),
          ),
        );
        return (
          lease.rows[0]?.ok === true && beats.rows[0].n === 2 && jobs.rows[0].n > 0 && health.every((s) => s === 200)
        );
      },
      30_000,
      250,
    );
    expect(Date.now() - recovered).toBeLessThan(30_000);
    expect(nodes.every((n) => n.running)).toBe(true);
    // Exactly one leader afterwards.
    const views = await Promise.all(
      ports.map((p) => fetch(`http://127.0.0.1:${p}/health`).then((r) => r.json() as Promise<{ is_leader: boolean }>)),
    );
    expect(views.filter((v) => v.is_leader)).toHaveLength(1);
    for (const n of nodes) n.signal('SIGTERM');
    expect(await Promise.all(nodes.map((n) => n.exited))).toEqual([0, 0]);
  });
});
