import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';

/**
 * Runs as the real restricted service role against the real server: what it may and may not do in sync_metadata,
 * and what row-level security lets it see.
 */

const HOSTS = {
  a: { cluster: 'cluster-one', hostname: 'host-1', node: 'node-a' },
  b: { cluster: 'cluster-one', hostname: 'host-1', node: 'node-b' },
  other: { cluster: 'cluster-two', hostname: 'host-9', node: 'node-a' },
} as const;

describe('service role security', () => {
  const db = useTestDatabase();
  let service: pg.Client;
  const ids: Record<keyof typeof HOSTS, string> = { a: '', b: '', other: '' };

  beforeAll(async () => {
    await withConnection(db.current.adminUrl, async (c) => {
      for (const [key, h] of Object.entries(HOSTS) as [keyof typeof HOSTS, (typeof HOSTS)[keyof typeof HOSTS]][]) {
        const res = await c.query(
          `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
           VALUES (sync_metadata.host_identity($1, $2, $3), $2, $1, $3) RETURNING host_id`,
          [h.cluster, h.hostname, h.node],
        );
        ids[key] = res.rows[0].host_id;
        await c.query(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
           VALUES ($1, $2, $3)`,
          [`tenant-${key}`, ids[key], `client_tenant_${key}`],
        );
      }
    });
    service = new pg.Client({ connectionString: db.current.serviceUrl });
    await service.connect();
  });

  afterAll(async () => {
    await service?.end();
  });

  async function expectDenied(sql: string): Promise<void> {
    await expect(service.query(sql)).rejects.toMatchObject({ code: expect.stringMatching(/^(42501|42P01)$/) });
  }

  async function scoped<T>(hostId: string, cluster: string, fn: () => Promise<T>): Promise<T> {
    await service.query('BEGIN');
    try {
      await service.query(
        "SELECT set_config('app.current_host_id', $1, true), set_config('app.current_cluster', $2, true)",
        [hostId, cluster],
      );
      return await fn();
    } finally {
      await service.query('ROLLBACK');
    }
  }

  it('logs in as a non-superuser without CREATE anywhere', async () => {
    const res = await service.query(
      `SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole,
              has_database_privilege(current_database(), 'CREATE') AS db_create,
              has_schema_privilege('sync_metadata', 'CREATE') AS meta_create,
              has_schema_privilege('public', 'CREATE') AS public_create
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    expect(res.rows[0]).toEqual({
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      db_create: false,
      meta_create: false,
      public_create: false,
    });
  });

  it('cannot DELETE, TRUNCATE, DROP or CREATE in sync_metadata', async () => {
    for (const table of [
      'hosts',
      'client_deployments',
      'sync_jobs',
      'conflict_log',
      'cache_events',
      'leader_election',
      'sync_progress',
    ]) {
      await expectDenied(`DELETE FROM sync_metadata.${table}`);
      await expectDenied(`TRUNCATE sync_metadata.${table}`);
      await expectDenied(`DROP TABLE sync_metadata.${table}`);
    }
    await expectDenied('DROP VIEW sync_metadata.v_cluster_health');
    await expectDenied('CREATE TABLE sync_metadata.intruder (id int)');
    await expectDenied('CREATE SCHEMA intruder');
    await expectDenied('CREATE TABLE public.intruder (id int)');
    await expectDenied('DROP SCHEMA sync_metadata CASCADE');
    await expectDenied('ALTER TABLE sync_metadata.hosts DISABLE ROW LEVEL SECURITY');
  });

  it('cannot read or change the install records', async () => {
    await expectDenied('SELECT * FROM sync_admin.schema_migrations');
  });

  it('can SELECT, INSERT and UPDATE within its own host scope', async () => {
    await scoped(ids.a, '', async () => {
      const hosts = await service.query('SELECT host_id FROM sync_metadata.hosts');
      expect(hosts.rows).toEqual([{ host_id: ids.a }]);
      const upd = await service.query(
        "UPDATE sync_metadata.hosts SET last_heartbeat = now(), status = 'online' WHERE host_id = $1",
        [ids.a],
      );
      expect(upd.rowCount).toBe(1);
      const dep = await service.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
         VALUES ('tenant-new', $1, 'client_tenant_new') RETURNING deployment_id`,
        [ids.a],
      );
      const job = await service.query(
        `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, sync_type, triggered_by, status)
         VALUES ($1, 'tenant-new', 'full', 'manual', 'running') RETURNING job_id`,
        [dep.rows[0].deployment_id],
      );
      const done = await service.query(
        "UPDATE sync_metadata.sync_jobs SET status = 'success', completed_at = now() WHERE job_id = $1",
        [job.rows[0].job_id],
      );
      expect(done.rowCount).toBe(1);
      const view = await service.query('SELECT client_name FROM sync_metadata.v_sync_status ORDER BY 1');
      expect(view.rows.map((r) => r.client_name)).toEqual(['tenant-a', 'tenant-new']);
    });
  });

  it('row-level security hides other hosts rows and blocks writes to them', async () => {
    await scoped(ids.a, '', async () => {
      const deps = await service.query('SELECT client_name FROM sync_metadata.client_deployments');
      expect(deps.rows).toEqual([{ client_name: 'tenant-a' }]);
      const upd = await service.query('UPDATE sync_metadata.hosts SET status = $1 WHERE host_id = $2', [
        'offline',
        ids.b,
      ]);
      expect(upd.rowCount).toBe(0);
      await expect(
        service.query(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
           VALUES ('sneaky', $1, 'client_sneaky')`,
          [ids.other],
        ),
      ).rejects.toMatchObject({ code: '42501' });
    });
  });

  it('sees nothing, without error, when app.current_host_id is unset', async () => {
    const hosts = await service.query('SELECT * FROM sync_metadata.hosts');
    expect(hosts.rows).toEqual([]);
    const deps = await service.query('SELECT * FROM sync_metadata.client_deployments');
    expect(deps.rows).toEqual([]);
    const health = await service.query('SELECT * FROM sync_metadata.v_cluster_health');
    expect(health.rows).toEqual([]);
  });

  it('scope does not leak past the transaction (pooler-safe)', async () => {
    await scoped(ids.a, 'cluster-one', async () => {
      const inside = await service.query('SELECT count(*)::int AS n FROM sync_metadata.hosts');
      expect(inside.rows[0].n).toBe(2);
    });
    const after = await service.query('SELECT count(*)::int AS n FROM sync_metadata.hosts');
    expect(after.rows[0].n).toBe(0);
  });

  it('cluster scope reads and updates every host of its cluster and nothing of another', async () => {
    await scoped('', 'cluster-one', async () => {
      const health = await service.query('SELECT node_name FROM sync_metadata.v_cluster_health ORDER BY 1');
      expect(health.rows.map((r) => r.node_name)).toEqual(['node-a', 'node-b']);
      const deps = await service.query('SELECT client_name FROM sync_metadata.client_deployments ORDER BY 1');
      expect(deps.rows.map((r) => r.client_name)).toEqual(['tenant-a', 'tenant-b']);
      const offline = await service.query("UPDATE sync_metadata.hosts SET status = 'offline' WHERE host_id = ANY($1)", [
        [ids.b, ids.other],
      ]);
      expect(offline.rowCount).toBe(1);
      await expectDeniedInTx(
        service,
        "UPDATE sync_metadata.hosts SET cluster_name = 'cluster-two' WHERE host_id = $1",
        [ids.a],
      );
    });
  });

  it('has role-level statement and idle-in-transaction timeouts', async () => {
    const st = await service.query('SHOW statement_timeout');
    const idle = await service.query('SHOW idle_in_transaction_session_timeout');
    expect(st.rows[0].statement_timeout).not.toBe('0');
    expect(idle.rows[0].idle_in_transaction_session_timeout).not.toBe('0');
  });

  it('may DELETE only in pg-boss own schema', async () => {
    const res = await service.query(
      `SELECT has_table_privilege('pgboss.job', 'DELETE') AS job_delete,
              has_table_privilege('sync_metadata.sync_jobs', 'DELETE') AS jobs_delete,
              has_schema_privilege('pgboss', 'CREATE') AS boss_create`,
    );
    expect(res.rows[0]).toEqual({ job_delete: true, jobs_delete: false, boss_create: false });
  });

  it('cannot destroy the shared queue: no pg-boss admin functions, no DELETE on its queue or version rows', async () => {
    for (const sql of [
      "SELECT pgboss.delete_queue('owui-sync')",
      "SELECT pgboss.create_queue('intruder', '{}'::jsonb)",
      "SELECT pgboss.job_table_run('DROP TABLE pgboss.job_common')",
      'DELETE FROM pgboss.queue',
      'DELETE FROM pgboss.version',
      "INSERT INTO pgboss.queue (name, policy) VALUES ('intruder', 'standard')",
      'TRUNCATE pgboss.job',
      'DROP TABLE pgboss.job_common',
    ]) {
      await expectDenied(sql);
    }
    // Every queue the install created is still there.
    const queues = await service.query("SELECT name FROM pgboss.queue WHERE name LIKE 'owui-sync%' ORDER BY name");
    expect(queues.rows.map((r) => r.name)).toEqual(['owui-sync', 'owui-sync-dead', 'owui-sync-drill']);
  });

  it('is recorded as the shared role of every cluster (scoped by its session settings, as before)', async () => {
    const me = await service.query('SELECT cluster_name, unrestricted FROM sync_metadata.caller_identity()');
    expect(me.rows[0]).toEqual({ cluster_name: null, unrestricted: true });
  });
});

async function expectDeniedInTx(client: pg.Client, sql: string, params: unknown[]): Promise<void> {
  await client.query('SAVEPOINT probe');
  await expect(client.query(sql, params)).rejects.toMatchObject({ code: '42501' });
  await client.query('ROLLBACK TO SAVEPOINT probe');
}
