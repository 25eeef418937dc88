import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalPostgres, type LocalPostgres } from '@owui-sync/engine';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { install, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI } from '../engine/helpers.ts';
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
    await install({
      adminUrl,
      serviceRole: context.serviceRole,
      servicePassword: context.servicePassword,
      groupRole: context.groupRole,
    });
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
      WORKER_CONCURRENCY: '1',
      SYNC_CLAIM_TTL: '5',
      QUEUE_SUPERVISE_INTERVAL: '1',
      API_PORT: String(apiPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    const ports = [await freePort(), await freePort()] as const;
    // Three tenants with real SQLite files, synced every second by the nodes and an extra worker.
    const adminPool = new pg.Pool({ connectionString: adminUrl, max: 2 });
    adminPool.on('error', () => undefined);
    const files: string[] = [];
    try {
      await adminPool.query(
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
         VALUES (sync_metadata.host_identity($1, 'e2e-host', 'node-a'), 'e2e-host', $1, 'node-a')`,
        [CLUSTER],
      );
      for (let i = 1; i <= 3; i += 1) {
        const file = path.join(dataDir, `..`, `${path.basename(dataDir)}-r${i}.db`);
        makeMiniOpenWebUI(file, { chats: 10 });
        files.push(file);
        await provisionTenant({
          adminPool,
          clientName: `r${i}`,
          sqlitePath: file,
          serviceRole: inject('pg').serviceRole,
        });
        await adminPool.query(
          `INSERT INTO sync_metadata.client_deployments
             (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
           VALUES ($1, sync_metadata.host_identity($2, 'e2e-host', 'node-a'), $3, $4, true, 'active', 1)`,
          [`r${i}`, CLUSTER, file, tenantSchemaName(`r${i}`)],
        );
      }
    } finally {
      await adminPool.end();
    }
    const nodes: AppProcess[] = [
      startApp('node-a', 'node', env('node-a', ports[0])),
      startApp('node-b', 'node', env('node-b', ports[1])),
    ];
    const worker = startApp('worker-1', 'worker', { ...env('worker-1', 0), WORKER_CONCURRENCY: '2' });
    nodes.push(worker);
    await Promise.all(nodes.map((n) => n.waitForLog(/started in cluster/, 30_000)));
    await waitUntil(
      'every tenant synced once',
      async () =>
        (
          await adminQuery(
            adminUrl,
            `SELECT count(*)::int AS n FROM sync_metadata.client_deployments WHERE last_sync_status = 'success'`,
          )
        ).rows[0].n === 3,
      30_000,
    );

    await server.stop();
    await sleep(2000);
    server = await startLocalPostgres({ dataDir, port });
    const restartedAt = (await adminQuery(adminUrl, 'SELECT now() AS t')).rows[0].t as Date;
    await adminQuery(adminUrl, `DELETE FROM pgboss.job WHERE name = $1 AND state <> 'active'`, [SYNC_QUEUE]);
    // A chat written to each tenant after the restart must reach PostgreSQL.
    for (const file of files) {
      const sqlite = new Database(file);
      sqlite
        .prepare(
          `INSERT INTO chat (id, user_id, title, archived, created_at, updated_at, chat, meta)
           VALUES ('after-restart', 'u1', 'written after the restart', 0, 1800000000, 1800000000, '{}', '{}')`,
        )
        .run();
      sqlite.close();
    }

    const recovered = Date.now();
    await waitUntil(
      'a renewed lease, fresh heartbeats from every process, healthy APIs, new jobs and the new rows synced',
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
        let synced = 0;
        for (let i = 1; i <= 3; i += 1) {
          const r = await adminQuery(
            adminUrl,
            `SELECT count(*)::int AS n FROM "${tenantSchemaName(`r${i}`)}".chat WHERE id = 'after-restart'`,
          );
          synced += r.rows[0].n;
        }
        const health = await Promise.all(
          ports.map((p) =>
            fetch(`http://127.0.0.1:${p}/health`)
              .then((r) => r.status)
              .catch(() => 0),
          ),
        );
        return (
          lease.rows[0]?.ok === true &&
          beats.rows[0].n === 3 &&
          jobs.rows[0].n > 0 &&
          synced === 3 &&
          health.every((s) => s === 200)
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
    expect(await Promise.all(nodes.map((n) => n.exited))).toEqual([0, 0, 0]);
    for (const file of files) rmSync(file, { force: true });
  });
});
