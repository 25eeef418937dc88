// Stays whole (over 400 lines): one attack surface (cluster A's credentials against cluster B), each attempt checked as admin on one shared fixture.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { grantTenantSchema, install, quoteIdent } from '@owui-sync/schema';
import { createClusterRole, type TestClusterRole } from '../support/cluster-roles.ts';
import { adminQuery, createTestRole, useTestDatabase, withConnection, withUser } from '../support/db.ts';

/**
 * Two clusters, each with its own login role, attacked with cluster A's credentials: every way of reading or
 * changing cluster B's rows, tenants and jobs, and of destroying shared structures, must be refused (an error, or
 * nothing seen / nothing changed — then checked as admin).
 */

type Seeded = {
  readonly cluster: string;
  readonly hostId: string;
  readonly deploymentId: string;
  readonly client: string;
  readonly schema: string;
};

const DENIED = /^(42501|42P01|3F000)$/;

describe('isolation between clusters', () => {
  const db = useTestDatabase();
  const seeded: Record<'a' | 'b', Seeded> = {} as never;
  const roles: Record<'a' | 'b', TestClusterRole> = {} as never;
  let a: pg.Client;

  beforeAll(async () => {
    const tag = randomBytes(2).toString('hex');
    await withConnection(db.current.adminUrl, async (c) => {
      for (const key of ['a', 'b'] as const) {
        const cluster = `iso-${key}-${tag}`;
        const client = `tenant-${key}-${tag}`;
        const schema = `client_tenant_${key}_${tag}`;
        const host = await c.query<{ host_id: string }>(
          `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
           VALUES (sync_metadata.host_identity($1, 'machine', 'node-a'), 'machine', $1, 'node-a')
           RETURNING host_id::text`,
          [cluster],
        );
        const hostId = host.rows[0]!.host_id;
        const dep = await c.query<{ deployment_id: string }>(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sqlite_path, sync_enabled,
                                                         status)
           VALUES ($1, $2, $3, '/data/' || $1 || '/webui.db', true, 'active') RETURNING deployment_id::text`,
          [client, hostId, schema],
        );
        const deploymentId = dep.rows[0]!.deployment_id;
        await c.query(
          `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, expires_at)
           VALUES ($1, 'node-a@machine', $2, now() + interval '1 hour')`,
          [cluster, hostId],
        );
        const job = await c.query<{ job_id: string }>(
          `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, sync_type, triggered_by, status, error)
           VALUES ($1, $2, 'full', 'scheduler', 'failed', 'secret failure of ' || $2) RETURNING job_id::text`,
          [deploymentId, client],
        );
        await c.query(
          `INSERT INTO sync_metadata.sync_progress (deployment_id, table_name, cursor_value) VALUES ($1, 'user', '42')`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_metadata.conflict_log (client_id, deployment_id, table_name, row_key, source_data,
                                                   resolution_strategy, resolution)
           VALUES ($1, $2, 'user', '{"id": "u1"}', '{"email": "ceo@example.com"}', 'manual', 'pending')`,
          [client, deploymentId],
        );
        await c.query(
          `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1, 'k', 'refresh')`,
          [hostId],
        );
        await c.query(
          `INSERT INTO sync_state.row_state (deployment_id, table_name, row_key, source_hash, job_id)
           VALUES ($1, 'user', 'u1', 1, $2)`,
          [deploymentId, job.rows[0]!.job_id],
        );
        await c.query(
          `INSERT INTO sync_state.failed_rows (deployment_id, table_name, row_key, key_values, error)
           VALUES ($1, 'user', 'u2', '["u2"]', 'bad json')`,
          [deploymentId],
        );
        await c.query(`INSERT INTO sync_state.source_schema (deployment_id, objects) VALUES ($1, '[]'::jsonb)`, [
          deploymentId,
        ]);
        await c.query(
          `INSERT INTO sync_state.verify_results (deployment_id, match, sqlite_path, totals, report, checked_at,
                                                  duration_seconds)
           VALUES ($1, true, '/x', '{}', '{}', now(), 1)`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_state.source_pages (deployment_id, file_id, page_size, page_count) VALUES ($1, 'f', 4096, 1)`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_state.source_page_chunks (deployment_id, chunk, data) VALUES ($1, 0, '\\x00')`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_state.source_cell_chunks (deployment_id, chunk, data) VALUES ($1, 0, '\\x00')`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_state.restore_drills (drill_id, deployment_id, passed, triggered_by, started_at, finished_at,
                                                  duration_seconds, checks)
           VALUES (gen_random_uuid(), $1, true, 'test', now(), now(), 1, '{}')`,
          [deploymentId],
        );
        await c.query(
          `INSERT INTO sync_api.state_entries (cluster_name, key, value) VALUES ($1, 'settings', '{"secret": 1}')`,
          [cluster],
        );
        await c.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
        await c.query(`CREATE TABLE ${quoteIdent(schema)}."user" (id text PRIMARY KEY, email text)`);
        await c.query(`INSERT INTO ${quoteIdent(schema)}."user" VALUES ('u1', $1)`, [`ceo@${key}.example.com`]);
        // The shared role of a single-cluster install had every tenant: the cluster roles must not inherit that.
        await c.query(`GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(db.current.serviceRole)}`);
        seeded[key] = { cluster, hostId, deploymentId, client, schema };
      }
    });
    // Roles created after their tenants: add-role grants the cluster's existing tenant schemas.
    roles.a = await createClusterRole(db.current, seeded.a.cluster, 'a');
    roles.b = await createClusterRole(db.current, seeded.b.cluster, 'b');
    a = new pg.Client({ connectionString: roles.a.url });
    await a.connect();
  });

  afterAll(async () => {
    await a?.end();
  });

  async function denied(sql: string, params: unknown[] = []): Promise<void> {
    await expect(a.query(sql, params), sql).rejects.toMatchObject({ code: expect.stringMatching(DENIED) });
  }

  /** Runs fn in a transaction of A's connection with the given (attacker-chosen) settings; always rolled back. */
  async function withSettings<T>(hostId: string, cluster: string, fn: () => Promise<T>): Promise<T> {
    await a.query('BEGIN');
    try {
      await a.query("SELECT set_config('app.current_host_id', $1, true), set_config('app.current_cluster', $2, true)", [
        hostId,
        cluster,
      ]);
      return await fn();
    } finally {
      await a.query('ROLLBACK');
    }
  }

  async function deniedInTx(sql: string, params: unknown[] = []): Promise<void> {
    await a.query('SAVEPOINT probe');
    await expect(a.query(sql, params), sql).rejects.toMatchObject({ code: expect.stringMatching(DENIED) });
    await a.query('ROLLBACK TO SAVEPOINT probe');
  }

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await a.query<{ n: string }>(`SELECT count(*) AS n FROM (${sql}) q`, params)).rows[0]?.n);

  it('the role is what add-role says: a login member of the group, mapped to its cluster, nothing more', async () => {
    const res = await adminQuery(
      db.current.adminUrl,
      `SELECT r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
              pg_has_role(r.rolname, $2, 'MEMBER') AS in_group, g.rolcanlogin AS group_login
         FROM pg_roles r, pg_roles g WHERE r.rolname = $1 AND g.rolname = $2`,
      [roles.a.role, inject('pg').groupRole],
    );
    expect(res.rows[0]).toEqual({
      rolcanlogin: true,
      rolinherit: true,
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolbypassrls: false,
      in_group: true,
      group_login: false,
    });
    const me = await a.query('SELECT role_name::text AS role, cluster_name FROM sync_metadata.caller_identity()');
    expect(me.rows[0]).toEqual({ role: roles.a.role, cluster_name: seeded.a.cluster });
    expect(roles.a.tenantSchemas).toEqual([seeded.a.schema]);
    expect(roles.a.queueSchema).not.toBe(roles.b.queueSchema);
  });

  it('does its own work: its host, tenant, lease, jobs and state', async () => {
    await withSettings(seeded.a.hostId, seeded.a.cluster, async () => {
      expect(await count('SELECT * FROM sync_metadata.hosts')).toBe(1);
      expect(await count('SELECT * FROM sync_metadata.v_sync_status')).toBe(1);
      const lease = await a.query(
        'UPDATE sync_metadata.leader_election SET renewed_at = now() WHERE cluster_name = $1',
        [seeded.a.cluster],
      );
      expect(lease.rowCount).toBe(1);
      await a.query(
        `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, sync_type, triggered_by)
         VALUES ($1, $2, 'incremental', 'api')`,
        [seeded.a.deploymentId, seeded.a.client],
      );
      for (const table of ['sync_metadata.sync_jobs', 'sync_metadata.conflict_log', 'sync_state.row_state']) {
        expect(await count(`SELECT * FROM ${table}`), table).toBeGreaterThan(0);
      }
      const tenant = await a.query(`SELECT email FROM ${quoteIdent(seeded.a.schema)}."user"`);
      expect(tenant.rows).toEqual([{ email: `ceo@a.example.com` }]);
      const state = await a.query('SELECT key FROM sync_metadata.api_state_get($1)', ['settings']);
      expect(state.rowCount).toBe(1);
    });
  });

  it("set_config to the other cluster's host or cluster shows and changes nothing of it", async () => {
    for (const [hostId, cluster] of [
      [seeded.b.hostId, ''],
      ['', seeded.b.cluster],
      [seeded.b.hostId, seeded.b.cluster],
    ] as const) {
      await withSettings(hostId, cluster, async () => {
        expect(await count('SELECT * FROM sync_metadata.hosts')).toBe(0);
        expect(await count('SELECT * FROM sync_metadata.client_deployments')).toBe(0);
        expect(await count('SELECT * FROM sync_metadata.v_cluster_health')).toBe(0);
        const hijack = await a.query(
          "UPDATE sync_metadata.client_deployments SET sqlite_path = '/etc/passwd' WHERE deployment_id = $1",
          [seeded.b.deploymentId],
        );
        expect(hijack.rowCount).toBe(0);
        const offline = await a.query("UPDATE sync_metadata.hosts SET status = 'offline' WHERE host_id = $1", [
          seeded.b.hostId,
        ]);
        expect(offline.rowCount).toBe(0);
      });
    }
    // Session-level settings (is_local = false) widen nothing either.
    await a.query("SELECT set_config('app.current_cluster', $1, false)", [seeded.b.cluster]);
    expect(await count('SELECT * FROM sync_metadata.hosts')).toBe(0);
    await a.query("SELECT set_config('app.current_cluster', '', false)");
    const after = await adminQuery(
      db.current.adminUrl,
      'SELECT sqlite_path FROM sync_metadata.client_deployments WHERE deployment_id = $1',
      [seeded.b.deploymentId],
    );
    expect(after.rows[0].sqlite_path).toBe(`/data/${seeded.b.client}/webui.db`);
  });

  it("reads none of the other cluster's jobs, conflicts, progress, row state, failed rows or cache events", async () => {
    const tables = [
      'sync_metadata.sync_jobs',
      'sync_metadata.sync_progress',
      'sync_metadata.conflict_log',
      'sync_state.row_state',
      'sync_state.failed_rows',
      'sync_state.source_schema',
      'sync_state.verify_results',
      'sync_state.source_pages',
      'sync_state.source_page_chunks',
      'sync_state.source_cell_chunks',
      'sync_state.restore_drills',
    ];
    for (const settings of [
      ['', ''],
      [seeded.b.hostId, seeded.b.cluster],
    ] as const) {
      await withSettings(settings[0], settings[1], async () => {
        for (const table of tables) {
          expect(await count(`SELECT * FROM ${table} WHERE deployment_id = $1`, [seeded.b.deploymentId]), table).toBe(
            0,
          );
          const upd = await a.query(`UPDATE ${table} SET deployment_id = deployment_id WHERE deployment_id = $1`, [
            seeded.b.deploymentId,
          ]);
          expect(upd.rowCount, table).toBe(0);
        }
        expect(await count('SELECT * FROM sync_metadata.cache_events WHERE host_id = $1', [seeded.b.hostId])).toBe(0);
        expect(
          await count('SELECT * FROM sync_metadata.v_conflict_summary WHERE deployment_id = $1', [
            seeded.b.deploymentId,
          ]),
        ).toBe(0);
        expect(
          await count('SELECT * FROM sync_state.v_tombstones WHERE deployment_id = $1', [seeded.b.deploymentId]),
        ).toBe(0);
      });
    }
  });

  it("cannot take over the other cluster's lease, hosts or tenants, nor move its own rows there", async () => {
    const evil = await a.query("UPDATE sync_metadata.leader_election SET leader_id = 'evil' WHERE cluster_name = $1", [
      seeded.b.cluster,
    ]);
    expect(evil.rowCount).toBe(0);
    expect(await count('SELECT * FROM sync_metadata.leader_election WHERE cluster_name = $1', [seeded.b.cluster])).toBe(
      0,
    );
    await withSettings(seeded.a.hostId, seeded.a.cluster, async () => {
      await deniedInTx(
        `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, expires_at)
         VALUES ('brand-new-cluster', 'evil', now() + interval '1 day')`,
      );
      await deniedInTx(
        `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
         VALUES (sync_metadata.host_identity($1, 'evil', 'node-x'), 'evil', $1, 'node-x')`,
        [seeded.b.cluster],
      );
      await deniedInTx('UPDATE sync_metadata.hosts SET cluster_name = $1 WHERE host_id = $2', [
        seeded.b.cluster,
        seeded.a.hostId,
      ]);
      await deniedInTx('UPDATE sync_metadata.client_deployments SET host_id = $1 WHERE deployment_id = $2', [
        seeded.b.hostId,
        seeded.a.deploymentId,
      ]);
      await deniedInTx(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name)
         VALUES ('planted', $1, 'client_planted')`,
        [seeded.b.hostId],
      );
      await deniedInTx(
        `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, sync_type, triggered_by)
         VALUES ($1, 'x', 'full', 'evil')`,
        [seeded.b.deploymentId],
      );
      await deniedInTx(
        `INSERT INTO sync_state.row_state (deployment_id, table_name, row_key) VALUES ($1, 'user', 'planted')`,
        [seeded.b.deploymentId],
      );
      await deniedInTx(
        `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action) VALUES ($1, 'k', 'invalidate')`,
        [seeded.b.hostId],
      );
      // The conflict of its own tenant cannot be re-pointed at the other cluster's tenant either.
      await deniedInTx('UPDATE sync_metadata.conflict_log SET deployment_id = $1 WHERE deployment_id = $2', [
        seeded.b.deploymentId,
        seeded.a.deploymentId,
      ]);
    });
    const lease = await adminQuery(
      db.current.adminUrl,
      'SELECT leader_id FROM sync_metadata.leader_election WHERE cluster_name = $1',
      [seeded.b.cluster],
    );
    expect(lease.rows[0].leader_id).toBe('node-a@machine');
  });

  it("reads and writes none of the other cluster's tenant schema", async () => {
    const other = quoteIdent(seeded.b.schema);
    await denied(`SELECT * FROM ${other}."user"`);
    await denied(`INSERT INTO ${other}."user" VALUES ('u9', 'x')`);
    await denied(`UPDATE ${other}."user" SET email = 'x'`);
    await denied(`CREATE TABLE ${other}.planted (id int)`);
    const privileges = await a.query(`SELECT has_schema_privilege($1, 'USAGE') AS usage`, [seeded.b.schema]);
    expect(privileges.rows[0]).toEqual({ usage: false });
  });

  it('gains nothing through SET ROLE, SET SESSION AUTHORIZATION or its own role settings', async () => {
    await denied(`SET ROLE ${quoteIdent(roles.b.role)}`);
    await denied(`SET ROLE ${quoteIdent(db.current.serviceRole)}`);
    await denied('SET ROLE postgres');
    await denied('SET SESSION AUTHORIZATION postgres');
    await denied(`ALTER ROLE ${quoteIdent(roles.b.role)} PASSWORD 'taken-over'`);
    await denied(`GRANT ${quoteIdent(roles.b.role)} TO ${quoteIdent(roles.a.role)}`);
    // The group role is reachable, but it is no cluster and holds no tenant: it sees less, not more.
    await a.query(`SET ROLE ${quoteIdent(inject('pg').groupRole)}`);
    try {
      await withSettings(seeded.b.hostId, seeded.b.cluster, async () => {
        expect(await count('SELECT * FROM sync_metadata.hosts')).toBe(0);
        expect(
          await count('SELECT * FROM sync_metadata.sync_jobs WHERE deployment_id = $1', [seeded.b.deploymentId]),
        ).toBe(0);
        await deniedInTx(`SELECT * FROM ${quoteIdent(seeded.b.schema)}."user"`);
        await deniedInTx(`SELECT * FROM ${quoteIdent(roles.b.queueSchema)}.job`);
      });
    } finally {
      await a.query('RESET ROLE');
    }
    // Nor can it make the other cluster its role-level default.
    await denied(
      `ALTER ROLE ${quoteIdent(roles.a.role)} SET app.current_cluster = ${pg.escapeLiteral(seeded.b.cluster)}`,
    );
  });

  it('cannot read or change the role mapping, nor look past row security through the helper functions', async () => {
    await denied('SELECT * FROM sync_admin.cluster_roles');
    await denied('UPDATE sync_admin.cluster_roles SET cluster_name = $1', [seeded.b.cluster]);
    await denied(`INSERT INTO sync_admin.cluster_roles (role_name, cluster_name) VALUES (current_user, NULL)`);
    const cluster = await a.query('SELECT sync_metadata.deployment_cluster($1) AS c', [seeded.b.deploymentId]);
    expect(cluster.rows[0].c).toBeNull();
    await withSettings('', seeded.b.cluster, async () => {
      const state = await a.query('SELECT * FROM sync_metadata.api_state_get($1)', ['settings']);
      expect(state.rowCount).toBe(0);
      await deniedInTx("SELECT * FROM sync_metadata.api_state_put('settings', '{\"secret\": 2}', 'evil')");
    });
    const value = await adminQuery(
      db.current.adminUrl,
      "SELECT value FROM sync_api.state_entries WHERE cluster_name = $1 AND key = 'settings'",
      [seeded.b.cluster],
    );
    expect(value.rows[0].value).toEqual({ secret: 1 });
  });

  it("cannot read, change or destroy any queue but its own, nor call pg-boss's admin functions", async () => {
    const own = quoteIdent(roles.a.queueSchema);
    const theirs = quoteIdent(roles.b.queueSchema);
    // The other cluster's queue schema and the shared one are closed.
    for (const schema of [theirs, 'pgboss']) {
      await denied(`SELECT * FROM ${schema}.job`);
      await denied(`DELETE FROM ${schema}.job`);
      await denied(`UPDATE ${schema}.job SET state = 'cancelled'`);
      await denied(`SELECT ${schema}.delete_queue('owui-sync')`);
      await denied(`SELECT * FROM ${schema}.queue`);
    }
    // Its own: runtime rights only.
    await denied(`SELECT ${own}.delete_queue('owui-sync')`);
    await denied(`SELECT ${own}.create_queue('intruder', '{}'::jsonb)`);
    await denied(`SELECT ${own}.job_table_run('DROP TABLE ${own}.job_common')`);
    await denied(`DELETE FROM ${own}.queue`);
    await denied(`INSERT INTO ${own}.queue (name, policy) VALUES ('intruder', 'standard')`);
    await denied(`DELETE FROM ${own}.version`);
    await denied(`TRUNCATE ${own}.job`);
    await denied(`DROP TABLE ${own}.job_common`);
    await denied(`ALTER TABLE ${own}.job DROP CONSTRAINT q_fkey`);
    await denied(`CREATE TABLE ${own}.intruder (id int)`);
    const queues = await adminQuery(
      db.current.adminUrl,
      `SELECT count(*)::int AS n FROM ${own}.queue WHERE name IN ('owui-sync', 'owui-sync-dead')`,
    );
    expect(queues.rows[0].n).toBe(2);
  });

  it('creates nothing anywhere and deletes, truncates or alters no table', async () => {
    for (const sql of [
      'CREATE TABLE public.intruder (id int)',
      'CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      'CREATE SCHEMA intruder',
      'CREATE TABLE sync_metadata.intruder (id int)',
      'CREATE TABLE sync_state.intruder (id int)',
      `CREATE TABLE ${quoteIdent(seeded.a.schema)}.intruder (id int)`,
      'CREATE VIEW sync_metadata.v_intruder AS SELECT 1',
      'DELETE FROM sync_metadata.hosts',
      'DELETE FROM sync_metadata.leader_election',
      'DELETE FROM sync_state.row_state',
      `DELETE FROM ${quoteIdent(seeded.a.schema)}."user"`,
      'TRUNCATE sync_metadata.sync_jobs',
      'TRUNCATE sync_state.failed_rows',
      'DROP TABLE sync_metadata.conflict_log',
      'DROP SCHEMA sync_state CASCADE',
      'ALTER TABLE sync_metadata.sync_jobs DISABLE ROW LEVEL SECURITY',
      'ALTER TABLE sync_metadata.hosts NO FORCE ROW LEVEL SECURITY',
      'DROP POLICY sync_caller_cluster ON sync_metadata.hosts',
    ]) {
      await denied(sql);
    }
  });

  it('an unmapped role, even one in the group, sees nothing whatever it sets', async () => {
    const { role, password } = await createTestRole('unmapped');
    await adminQuery(db.current.adminUrl, `GRANT ${quoteIdent(inject('pg').groupRole)} TO ${quoteIdent(role)}`);
    await withConnection(withUser(db.current.adminUrl, role, password), async (c) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.current_host_id', $1, true), set_config('app.current_cluster', $2, true)", [
        seeded.a.hostId,
        seeded.a.cluster,
      ]);
      for (const table of [
        'sync_metadata.hosts',
        'sync_metadata.client_deployments',
        'sync_metadata.leader_election',
        'sync_metadata.sync_jobs',
        'sync_metadata.conflict_log',
        'sync_state.row_state',
      ]) {
        const res = await c.query(`SELECT count(*)::int AS n FROM ${table}`);
        expect(res.rows[0].n, table).toBe(0);
      }
      await c.query('ROLLBACK');
    });
  });

  it("init refuses to turn a cluster's role into the shared one", async () => {
    await expect(
      install({ adminUrl: db.current.adminUrl, serviceRole: roles.a.role, groupRole: inject('pg').groupRole }),
    ).rejects.toThrow(/is the role of cluster .*syncctl cluster add-role --cluster/);
    const still = await a.query('SELECT has_schema_privilege($1, $2) AS usage', ['pgboss', 'USAGE']);
    expect(still.rows[0].usage).toBe(false);
  });

  it('registering a tenant grants its schema to its cluster only and takes it from the others', async () => {
    const schema = `client_moved_${randomBytes(2).toString('hex')}`;
    await withConnection(db.current.adminUrl, async (c) => {
      await c.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
      await c.query(`CREATE TABLE ${quoteIdent(schema)}.chat (id text PRIMARY KEY)`);
      await grantTenantSchema(c, schema, seeded.b.cluster);
      await grantTenantSchema(c, schema, seeded.a.cluster);
      // A table added later (schema upgrade) follows the default privileges.
      await c.query(`CREATE TABLE ${quoteIdent(schema)}.later (id text PRIMARY KEY)`);
    });
    const rights = await adminQuery(
      db.current.adminUrl,
      `SELECT r.role, has_schema_privilege(r.role, $1, 'USAGE') AS usage,
              has_table_privilege(r.role, $1 || '.chat', 'SELECT') AS chat,
              has_table_privilege(r.role, $1 || '.later', 'UPDATE') AS later,
              has_table_privilege(r.role, $1 || '.chat', 'DELETE') AS del
         FROM unnest($2::text[]) AS r(role) ORDER BY array_position($2::text[], r.role)`,
      [schema, [roles.a.role, roles.b.role]],
    );
    expect(rights.rows).toEqual([
      { role: roles.a.role, usage: true, chat: true, later: true, del: false },
      { role: roles.b.role, usage: false, chat: false, later: false, del: false },
    ]);
  });
});
