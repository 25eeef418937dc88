import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { useTestDatabase, withConnection } from '../support/db.ts';
import { makeTenantDb, syncctl } from './support.ts';

/** syncctl cluster add-role: a host's own role, its tenants registered and synced with it, nothing of another. */
describe('syncctl cluster add-role', () => {
  const db = useTestDatabase();
  const dir = mkdtempSync(path.join(tmpdir(), 'syncctl-roles-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const runId = () => inject('pg').runId;
  const q = async (sql: string, params: unknown[] = []) =>
    withConnection(db.current.adminUrl, async (c) => (await c.query(sql, params)).rows);

  const addRole = (cluster: string, role: string, extra: string[] = ['--json']) =>
    syncctl(['cluster', 'add-role', '--cluster', cluster, '--role', role, ...extra], {
      env: { ADMIN_URL: db.current.adminUrl },
    });

  it("creates the role, prints its connection string once, and registers and syncs that host's tenants", async () => {
    const one = `owui_crone_${runId()}`;
    const two = `owui_crtwo_${runId()}`;
    const first = await addRole('host-one', one);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ role: one, cluster: 'host-one', created: true, tenantSchemas: [] });
    const oneUrl = (first.json() as { sync_url: string }).sync_url;
    const created = await addRole('host-two', two);
    const twoUrl = (created.json() as { sync_url: string }).sync_url;
    const who = await withConnection(
      twoUrl,
      async (c) => (await c.query('SELECT cluster_name FROM sync_metadata.caller_identity()')).rows,
    );
    expect(who).toEqual([{ cluster_name: 'host-two' }]);

    // Re-running keeps the password; the text output says what happened.
    const again = await syncctl(['cluster', 'add-role', '--cluster', 'host-two', '--role', two], {
      env: { ADMIN_URL: db.current.adminUrl },
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/role "owui_crtwo_.*" exists for cluster "host-two"; password unchanged/);

    // The host's tenant, registered and synced with its own role (directly and through its own queue).
    const file = path.join(dir, 'two.db');
    makeTenantDb(file, 4);
    const env = { ADMIN_URL: db.current.adminUrl, DATABASE_URL: twoUrl, CLUSTER_NAME: 'host-two' };
    const reg = await syncctl(['client', 'register', 'two-tenant', '--sqlite', file], { env });
    expect(reg.code, reg.stderr).toBe(0);
    const sync = await syncctl(['client', 'sync', 'two-tenant', '--full'], { env });
    expect(sync.code, sync.stderr).toBe(0);
    const queued = await syncctl(['client', 'sync', 'two-tenant', '--via-queue'], { env });
    expect(queued.code, queued.stderr).toBe(0);
    const schema = (created.json() as { queueSchema: string }).queueSchema;
    expect(await q(`SELECT data->>'client_name' AS c FROM "${schema}".job`)).toEqual([{ c: 'two-tenant' }]);
    expect(await q('SELECT count(*)::int AS n FROM pgboss.job')).toEqual([{ n: 0 }]);
    const rows = await q('SELECT count(*)::int AS n FROM client_two_tenant.chat');
    expect(rows[0].n).toBe(4);

    // Host one's role reaches none of it.
    await withConnection(oneUrl, async (c) => {
      await expect(c.query('SELECT * FROM client_two_tenant.chat')).rejects.toMatchObject({ code: '42501' });
    });
    const other = await syncctl(['client', 'sync', 'two-tenant'], {
      env: { ...env, DATABASE_URL: oneUrl, CLUSTER_NAME: 'host-one' },
    });
    expect(other.code).not.toBe(0);
  });

  it('refuses roles that are not the cluster own, with the reason', async () => {
    const shared = await addRole('host-three', db.current.serviceRole, []);
    expect(shared.code).toBe(1);
    expect(shared.stdout + shared.stderr).toMatch(/shared service role of every cluster; choose another role name/);
    const taken = await addRole('host-three', `owui_crone_${runId()}`, []);
    expect(taken.code).toBe(1);
    expect(taken.stdout + taken.stderr).toMatch(/already belongs to cluster "host-one"/);
    const foreign = await addRole('host-three', 'postgres', []);
    expect(foreign.code).toBe(1);
    expect(foreign.stdout + foreign.stderr).toMatch(/already exists and is not a cluster role/);
    const badName = await addRole('host-three', 'Bad-Role', []);
    expect(badName.code).toBe(1);
    expect(badName.stdout + badName.stderr).toMatch(/role name "Bad-Role" is invalid/);
    const badCluster = await addRole('bad cluster!', `owui_crbad_${runId()}`, []);
    expect(badCluster.code).toBe(1);
    expect(badCluster.stdout + badCluster.stderr).toMatch(/cluster name "bad cluster!" is invalid/);
  });
});
