import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { PGBOSS_SCHEMA, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, startApp, waitUntil } from '../support/processes.ts';

/**
 * A real node whose tenants' files include a FIFO at the database path and a FIFO at a WAL database's -wal: the
 * node keeps answering /health, keeps its heartbeat and leadership, fails those jobs at once with the reason, syncs
 * the healthy tenant, and syncs the others as soon as the files are fixed.
 */
describe('a node facing FIFOs at tenant paths stays responsive', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-cluster-hostile-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 4 });
    const adminBoss = new PgBoss({ connectionString: db.current.adminUrl, schema: PGBOSS_SCHEMA, migrate: false });
    adminBoss.on('error', () => undefined);
    await adminBoss.start();
    await adminBoss.updateQueue(SYNC_QUEUE, { retryDelay: 1 });
    await adminBoss.stop({ graceful: false });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  async function addTenant(cluster: string, name: string, journalMode: 'wal' | 'delete'): Promise<string> {
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, { chats: 5, journalMode });
    await provisionTenant({ adminPool, clientName: name, sqlitePath: file, serviceRole: db.current.serviceRole });
    await adminPool.query(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity($1, 'hostile-host', 'node-a'), 'hostile-host', $1, 'node-a')
       ON CONFLICT (host_id) DO NOTHING`,
      [cluster],
    );
    await adminPool.query(
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, sqlite_realpath, schema_name, sync_enabled, status, sync_interval)
       VALUES ($1, sync_metadata.host_identity($2, 'hostile-host', 'node-a'), $3, $3, $4, true, 'active', 2)`,
      [name, cluster, file, tenantSchemaName(name)],
    );
    return file;
  }

  const status = async (name: string) =>
    (
      await adminQuery(
        db.current.adminUrl,
        `SELECT d.last_sync_status AS last, count(j.*) FILTER (WHERE j.status = 'failed')::int AS failed,
                max(j.error) FILTER (WHERE j.status = 'failed') AS error
           FROM sync_metadata.client_deployments d LEFT JOIN sync_metadata.sync_jobs j USING (deployment_id)
          WHERE d.client_name = $1 GROUP BY d.last_sync_status`,
        [name],
      )
    ).rows[0] as { last: string | null; failed: number; error: string | null };

  it('fails the hostile tenants at once, syncs the healthy one, and keeps /health and the lease', async () => {
    const cluster = 'hostile-files';
    await addTenant(cluster, 'healthy', 'delete');
    const mainFile = await addTenant(cluster, 'fifo-db', 'delete');
    const walFile = await addTenant(cluster, 'fifo-wal', 'wal');
    const keptMain = scratch.file('fifo-db.kept');
    execFileSync('mv', [mainFile, keptMain]);
    execFileSync('mkfifo', [mainFile]);
    const wal = new Database(walFile);
    wal.pragma('wal_checkpoint(TRUNCATE)');
    wal.close();
    rmSync(`${walFile}-wal`, { force: true });
    execFileSync('mkfifo', [`${walFile}-wal`]);

    const port = await freePort();
    const node = startApp('node-a', 'node', {
      DATABASE_URL: url.url,
      DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
      CLUSTER_NAME: cluster,
      ROLE: 'node-a',
      HOST_NAME: 'hostile-host',
      LEASE_DURATION: '3',
      HEARTBEAT_INTERVAL: '1',
      SCHEDULER_INTERVAL: '1',
      SYNC_CLAIM_TTL: '5',
      WORKER_CONCURRENCY: '2',
      API_PORT: String(port),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
    // The API listens once the node's other loops are up; probing starts then.
    await node.waitForLog(/API listening/, 30_000);

    // /health must answer quickly all the time, while the hostile jobs fail and are retried.
    let slowest = 0;
    let probes = 0;
    let leaderSeen = false;
    const probe = async () => {
      const t0 = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
      const body = (await res.json()) as { is_leader: boolean };
      slowest = Math.max(slowest, performance.now() - t0);
      probes += 1;
      leaderSeen ||= body.is_leader;
      expect(res.status).toBe(200);
    };
    await waitUntil(
      'the healthy tenant synced and each hostile tenant failed at least twice',
      async () => {
        await probe();
        const [healthy, fifoDb, fifoWal] = await Promise.all([
          status('healthy'),
          status('fifo-db'),
          status('fifo-wal'),
        ]);
        return healthy.last === 'success' && fifoDb.failed >= 2 && fifoWal.failed >= 2;
      },
      45_000,
      200,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${node.tail()}`);
    });
    expect(slowest).toBeLessThan(1_500);
    expect(probes).toBeGreaterThan(3);
    expect(leaderSeen).toBe(true);
    expect((await status('fifo-db')).error).toMatch(/fifo-db\.db is a FIFO \(named pipe\), not a regular file/);
    expect((await status('fifo-wal')).error).toMatch(/fifo-wal\.db-wal is a FIFO \(named pipe\)/);
    const heartbeat = await adminQuery(
      db.current.adminUrl,
      `SELECT extract(epoch FROM now() - last_heartbeat)::float AS age FROM sync_metadata.hosts
        WHERE cluster_name = $1 AND node_name = 'node-a'`,
      [cluster],
    );
    expect(heartbeat.rows[0].age).toBeLessThan(3);
    for (const name of ['fifo-db', 'fifo-wal']) {
      const rows = await adminQuery(
        db.current.adminUrl,
        `SELECT count(*)::int AS n FROM ${tenantSchemaName(name)}.chat`,
      );
      expect(rows.rows[0].n, name).toBe(0);
    }

    // Fixed files sync on the next runs.
    rmSync(mainFile);
    execFileSync('mv', [keptMain, mainFile]);
    rmSync(`${walFile}-wal`);
    await waitUntil(
      'the fixed tenants synced',
      async () => {
        await probe();
        const [a, b] = await Promise.all([status('fifo-db'), status('fifo-wal')]);
        return a.last === 'success' && b.last === 'success';
      },
      45_000,
      200,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${node.tail()}`);
    });
    for (const name of ['fifo-db', 'fifo-wal']) {
      const rows = await adminQuery(
        db.current.adminUrl,
        `SELECT count(*)::int AS n FROM ${tenantSchemaName(name)}.chat`,
      );
      expect(rows.rows[0].n, name).toBe(5);
    }
  });
});
