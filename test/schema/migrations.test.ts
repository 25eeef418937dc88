import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { install, loadMigrations, migrate, quoteIdent } from '@owui-sync/schema';
import { adminQuery, useTestDatabase, withConnection, withDatabase, withUser } from '../support/db.ts';
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';

const EXPECTED_TABLES = [
  'cache_events',
  'client_deployments',
  'conflict_log',
  'hosts',
  'leader_election',
  'sync_jobs',
  'sync_progress',
];
const EXPECTED_VIEWS = ['v_cluster_health', 'v_conflict_summary', 'v_sync_status'];

async function relations(url: string, kinds: string[]): Promise<string[]> {
  const res = await adminQuery(
    url,
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'sync_metadata' AND c.relkind = ANY($1::"char"[]) ORDER BY 1`,
    [kinds],
  );
  return res.rows.map((r: { relname: string }) => r.relname);
}

describe('sync_metadata migrations', () => {
  const db = useTestDatabase();
  const emptyDbs: string[] = [];

  afterAll(async () => {
    const { adminUrl } = inject('pg');
    for (const name of emptyDbs) await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });

  async function emptyDatabase(): Promise<string> {
    const { adminUrl, runId } = inject('pg');
    const name = `owui_t_${runId}_empty_${randomBytes(3).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${quoteIdent(name)}`);
    emptyDbs.push(name);
    return withDatabase(adminUrl, name);
  }

  it('creates exactly the documented tables and views', async () => {
    expect(await relations(db.current.adminUrl, ['r', 'p'])).toEqual(EXPECTED_TABLES);
    expect(await relations(db.current.adminUrl, ['v'])).toEqual(EXPECTED_VIEWS);
  });

  it('installs the pg-boss schema and the sync queues', async () => {
    const res = await adminQuery(db.current.adminUrl, 'SELECT name, policy FROM pgboss.queue ORDER BY name');
    expect(res.rows).toEqual([
      { name: 'owui-sync', policy: 'stately' },
      { name: 'owui-sync-dead', policy: 'standard' },
      { name: 'owui-sync-drill', policy: 'stately' },
    ]);
  });

  it('is idempotent: a second install changes nothing', async () => {
    const { serviceRole } = db.current;
    const second = await install({ adminUrl: db.current.adminUrl, serviceRole, groupRole: inject('pg').groupRole });
    expect(second.migrations.applied).toEqual([]);
    expect(second.roleCreated).toBe(false);
    expect(second.passwordSet).toBe(false);
    expect(second.queueSchemaInstalled).toBe(false);
    expect(second.queuesCreated).toEqual([]);
    expect(await relations(db.current.adminUrl, ['r', 'p'])).toEqual(EXPECTED_TABLES);
  });

  it('applies every migration on an empty database and records it', async () => {
    const url = await emptyDatabase();
    const files = await loadMigrations();
    const result = await withConnection(url, (c) => migrate(c));
    expect(result.applied).toEqual(files.map((m) => m.name));
    const recorded = await adminQuery(url, 'SELECT name FROM sync_admin.schema_migrations ORDER BY id');
    expect(recorded.rows.map((r: { name: string }) => r.name)).toEqual(files.map((m) => m.name));
    expect(await relations(url, ['r', 'p'])).toEqual(EXPECTED_TABLES);
  });

  it('two processes migrating at once both end well, each migration applied once', async () => {
    const url = await emptyDatabase();
    const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const results = await Promise.all(clients.map((c) => migrate(c)));
      const files = await loadMigrations();
      const appliedTotal = results.flatMap((r) => r.applied);
      expect(appliedTotal.sort()).toEqual(files.map((m) => m.name).sort());
      expect(results.reduce((n, r) => n + r.alreadyApplied, 0)).toBe(files.length);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('upgrades an install from before cluster roles in place: the shared role keeps working', async () => {
    const url = await emptyDatabase();
    const { serviceRole, context } = db.current;
    const older = (await loadMigrations()).filter((m) => m.id < 9);
    await withConnection(url, (c) => migrate(c, older));
    await adminQuery(
      url,
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('old', 'h', 'node-a'), 'h', 'old', 'node-a')`,
    );
    const upgraded = await install({ adminUrl: url, serviceRole, groupRole: context.groupRole });
    // Every migration from 000009 on, and only those.
    const later = (await loadMigrations()).filter((m) => m.id >= 9).map((m) => m.name);
    expect(later.slice(0, 2)).toEqual(['000009_cluster_roles', '000010_sqlite_realpath']);
    expect(upgraded.migrations.applied).toEqual(later);
    await withConnection(withUser(url, serviceRole, context.servicePassword), async (c) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.current_cluster', 'old', true)");
      const hosts = await c.query('SELECT cluster_name FROM sync_metadata.hosts');
      expect(hosts.rows).toEqual([{ cluster_name: 'old' }]);
      const me = await c.query('SELECT unrestricted FROM sync_metadata.caller_identity()');
      expect(me.rows).toEqual([{ unrestricted: true }]);
      // History pruning is open to the upgraded role (it then refuses: cluster "old" has no leader).
      await expect(
        c.query("SELECT sync_metadata.prune_history('sync_jobs', 'old', 1, interval '30 days', 10)"),
      ).rejects.toMatchObject({ code: '55000' });
      await c.query('ROLLBACK');
    });
  });

  it('two concurrent full installs (role, grants, queue) both succeed', async () => {
    const url = await emptyDatabase();
    const { serviceRole } = db.current;
    const results = await Promise.all([
      install({ adminUrl: url, serviceRole, groupRole: inject('pg').groupRole }),
      install({ adminUrl: url, serviceRole, groupRole: inject('pg').groupRole }),
    ]);
    expect(results.flatMap((r) => r.migrations.applied).length).toBe((await loadMigrations()).length);
    expect(await relations(url, ['r', 'p'])).toEqual(EXPECTED_TABLES);
  });
});
