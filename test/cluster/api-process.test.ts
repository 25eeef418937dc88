import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { scratchDir } from '../engine/helpers.ts';
import { useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { freePort, killAllProcesses, seedTenantOnNode, sleep, startApp } from '../support/processes.ts';

/**
 * The API-only process (apps/api): it registers as a host of role api, serves the cluster's API (health, tenants,
 * sync triggers, which land on the queue), takes no part in the election and runs no sync; SIGTERM closes the
 * listener and marks the host stopped. A name held by a live process of another role is refused, and so is a
 * database whose schema predates the api role.
 */

const CLUSTER = 'e2e-api';

describe('API-only process', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-api-process-');
  let url: ClusterUrl;
  let adminPool: pg.Pool;

  const env = (port: number, extra: Record<string, string> = {}) => ({
    DATABASE_URL: url.url,
    DATABASE_POOLER: url.pooled ? 'transaction' : 'none',
    CLUSTER_NAME: CLUSTER,
    HOST_NAME: 'e2e-host',
    HEARTBEAT_INTERVAL: '1',
    LEASE_DURATION: '3',
    API_PORT: String(port),
    API_HOST: '127.0.0.1',
    API_TOKEN: 'an-api-token-of-enough-length',
    LOG_LEVEL: 'info',
    ...extra,
  });
  const get = async (port: number, path: string, init: RequestInit = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { authorization: 'Bearer an-api-token-of-enough-length', 'content-type': 'application/json' },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    // A node of the cluster, live (heartbeat now), that holds the tenant.
    await seedTenantOnNode({
      adminPool,
      serviceRole: db.current.serviceRole,
      cluster: CLUSTER,
      clientName: 'acme',
      file: scratch.file('acme.db'),
    });
  });

  afterAll(async () => {
    await killAllProcesses();
    await adminPool?.end();
    scratch.cleanup();
  });

  it('serves the API as host role api, queues triggers, never leads or syncs; SIGTERM stops it cleanly', async () => {
    const port = await freePort();
    const api = startApp('api-1', 'api', env(port, { ROLE: 'api-1' }));
    await api.waitForLog(/API listening on port/, 30_000);
    await api.waitForLog(/^api api-1 started in cluster "e2e-api"$/);

    const health = await get(port, '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'healthy', node_id: 'api-1', role: 'api', is_leader: false });

    const tenants = await get(port, '/api/v1/tenants');
    expect(tenants.status).toBe(200);
    expect(JSON.stringify(tenants.body)).toContain('"acme"');

    const status = await get(port, '/api/v1/cluster/status');
    const nodes = status.body.nodes as { node_name: string; role: string; status: string }[];
    expect(nodes.find((n) => n.node_name === 'api-1')).toMatchObject({ role: 'api', status: 'healthy' });

    const trigger = await get(port, '/api/v1/sync/trigger', {
      method: 'POST',
      body: JSON.stringify({ client_name: 'acme' }),
    });
    expect(trigger.status, JSON.stringify(trigger.body)).toBe(200);
    expect(trigger.body).toMatchObject({ status: 'queued', client: 'acme', triggered_by: 'api' });

    // The job waits for a worker: this process runs none, and it never takes the lease.
    await sleep(2500);
    const jobs = await adminPool.query(`SELECT state FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
    expect(jobs.rows).toEqual([{ state: 'created' }]);
    const runs = await adminPool.query(`SELECT count(*)::int AS n FROM sync_metadata.sync_jobs`);
    expect(runs.rows[0].n).toBe(0);
    const lease = await adminPool.query(`SELECT count(*)::int AS n FROM sync_metadata.leader_election`);
    expect(lease.rows[0].n).toBe(0);
    expect(api.raw.join('\n')).not.toMatch(/sync worker|became leader/i);

    const host = await adminPool.query(
      `SELECT role, status FROM sync_metadata.hosts WHERE cluster_name = $1 AND node_name = 'api-1'`,
      [CLUSTER],
    );
    expect(host.rows).toEqual([{ role: 'api', status: 'online' }]);

    api.signal('SIGTERM');
    expect(await api.exited, api.tail()).toBe(0);
    const after = await adminPool.query(
      `SELECT status FROM sync_metadata.hosts WHERE cluster_name = $1 AND node_name = 'api-1'`,
      [CLUSTER],
    );
    expect(after.rows).toEqual([{ status: 'stopped' }]);
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });

  it("refuses a name a live process of another role holds, and leaves that host's row alone", async () => {
    await adminPool.query(
      `UPDATE sync_metadata.hosts SET last_heartbeat = now(), status = 'online' WHERE node_name = 'node-a'`,
    );
    const api = startApp('api-as-node-a', 'api', env(await freePort(), { ROLE: 'node-a' }));
    expect(await api.exited, api.tail()).toBe(2);
    expect(api.raw.join('\n')).toMatch(/node-a@e2e-host in cluster "e2e-api" is registered to a running node process/);
    const host = await adminPool.query(`SELECT role, status FROM sync_metadata.hosts WHERE node_name = 'node-a'`);
    expect(host.rows).toEqual([{ role: 'node', status: 'online' }]);
  });

  it('says to run init, instead of retrying for ever, on a database whose schema predates the api role', async () => {
    await adminPool.query(`ALTER TABLE sync_metadata.hosts DROP CONSTRAINT hosts_role_check`);
    await adminPool.query(
      // As before migration 000020 (NOT VALID: the api row of the first test stays).
      `ALTER TABLE sync_metadata.hosts
         ADD CONSTRAINT hosts_role_check CHECK (role IN ('node', 'worker', 'admin')) NOT VALID`,
    );
    try {
      const api = startApp('api-old-schema', 'api', env(await freePort(), { ROLE: 'api-2' }));
      const code = await Promise.race([api.exited, sleep(30_000).then(() => 'still running')]);
      expect(code, api.tail()).toBe(2);
      expect(api.raw.join('\n')).toMatch(/has no host role "api" yet: run syncctl init/);
    } finally {
      await adminPool.query(`ALTER TABLE sync_metadata.hosts DROP CONSTRAINT hosts_role_check`);
      await adminPool.query(
        `ALTER TABLE sync_metadata.hosts ADD CONSTRAINT hosts_role_check
           CHECK (role IN ('node', 'worker', 'api', 'admin'))`,
      );
    }
  });

  it('waits for the database like every process: unreachable at start, it keeps retrying until stopped', async () => {
    const dead = await freePort();
    const api = startApp('api-no-db', 'api', {
      ...env(await freePort(), { ROLE: 'api-3' }),
      DATABASE_URL: `postgres://nobody@127.0.0.1:${dead}/none`,
      DATABASE_POOLER: 'none',
    });
    await api.waitForLog(/failed: .*retrying in/, 15_000);
    api.signal('SIGTERM');
    expect(await api.exited, api.tail()).toBe(0);
  });
});
