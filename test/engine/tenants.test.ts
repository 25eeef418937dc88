import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '@owui-sync/engine';
import { readClusterStatus } from '@owui-sync/engine/cluster';
import {
  applySyncSwitch,
  canSyncNow,
  clusterDeploymentIds,
  findTenant,
  listTenants,
  readSyncSwitch,
  schedulableSql,
  SYNC_REFUSALS,
  tenantClusterOf,
  tenantStatuses,
} from '@owui-sync/engine/tenants';
import { seedCluster, tenantName, type SeededCluster } from '../api/support.ts';
import { useTestDatabase } from '../support/db.ts';

/** The tenants/ data-access modules and the cluster status query against a real database with two clusters. */
describe('tenants', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let other: SeededCluster;
  let admin: pg.Pool;
  let service: pg.Pool;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'tn-a');
    other = await seedCluster(db.current, 'tn-b');
    admin = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    service = new pg.Pool({ connectionString: db.current.serviceUrl, max: 2 });
  });

  afterAll(async () => {
    await admin?.end();
    await service?.end();
  });

  const inCluster = <T>(cluster: string, fn: (c: pg.PoolClient) => Promise<T>) =>
    withTransaction(service, fn, { cluster });

  it('finds a tenant by name in its cluster only, and tells which cluster has it', async () => {
    const acme = tenantName(seed, 'acme');
    const found = await inCluster(seed.cluster, (c) => findTenant(c, acme, seed.cluster));
    expect(found).toMatchObject({
      deployment_id: seed.tenants.acme,
      client_name: acme,
      host_id: seed.hostA,
      cluster_name: seed.cluster,
      status: 'active',
      sync_enabled: true,
      sync_interval: 300,
    });
    expect(await inCluster(seed.cluster, (c) => findTenant(c, acme, other.cluster))).toBeUndefined();
    expect(await tenantClusterOf(admin, acme)).toBe(seed.cluster);
    expect(await tenantClusterOf(admin, 'nobody')).toBeNull();
  });

  it("lists a cluster's tenants, filtered by their switch, and their status rows", async () => {
    const all = await inCluster(seed.cluster, (c) => listTenants(c, seed.cluster));
    expect(all.map((t) => t.client_name)).toEqual(['acme', 'globex', 'paused'].map((w) => `tna-${w}`));
    const off = await inCluster(seed.cluster, (c) => listTenants(c, seed.cluster, { syncEnabled: false }));
    expect(off.map((t) => t.client_name)).toEqual([tenantName(seed, 'paused')]);
    const on = await inCluster(seed.cluster, (c) => listTenants(c, seed.cluster, { syncEnabled: true }));
    expect(on).toHaveLength(2);
    const ids = await inCluster(seed.cluster, (c) => clusterDeploymentIds(c, seed.cluster));
    expect(ids.sort()).toEqual(Object.values(seed.tenants).sort());
    const statuses = await inCluster(seed.cluster, (c) => tenantStatuses(c, seed.cluster, { drills: true }));
    expect(statuses.map((s) => s.client_name)).toEqual(all.map((t) => t.client_name));
    expect(statuses[0]).toMatchObject({ unresolved_conflicts: 1, conflict_strategy: expect.any(String) });
    expect(statuses[0]).toHaveProperty('last_drill_at', null);
    const one = await inCluster(seed.cluster, (c) =>
      tenantStatuses(c, seed.cluster, { clientName: tenantName(seed, 'globex') }),
    );
    expect(one.map((s) => s.client_name)).toEqual([tenantName(seed, 'globex')]);
    expect(one[0]).not.toHaveProperty('last_drill_at');
  });

  it('decides "may it sync now" the same way in TypeScript and in SQL', async () => {
    const statuses = ['registered', 'active', 'paused', 'error', 'deregistered'];
    const res = await admin.query<{ status: string; sync_enabled: boolean; ok: boolean }>(
      `SELECT d.status, d.sync_enabled, ${schedulableSql('d')} AS ok
         FROM unnest($1::text[]) s(status) CROSS JOIN unnest(ARRAY[true, false]) e(sync_enabled),
              LATERAL (SELECT s.status, e.sync_enabled) d`,
      [statuses],
    );
    expect(res.rows).toHaveLength(10);
    for (const row of res.rows) {
      const refusal = canSyncNow(row, { clientName: 'x', scheduled: true });
      expect(refusal === null, `${row.status}/${row.sync_enabled}`).toBe(row.ok);
    }
    // By hand: paused only when forced, deregistered or unknown never.
    const paused = { status: 'paused', sync_enabled: false };
    expect(canSyncNow(paused, { clientName: 'x', scheduled: false })?.reason).toBe(SYNC_REFUSALS.paused);
    expect(canSyncNow(paused, { clientName: 'x', scheduled: false, force: true })).toBeNull();
    expect(canSyncNow({ status: 'registered', sync_enabled: false }, { clientName: 'x', scheduled: false })).toBeNull();
    expect(
      canSyncNow({ status: 'deregistered', sync_enabled: true }, { clientName: 'x', scheduled: false, force: true })
        ?.reason,
    ).toBe(SYNC_REFUSALS.deregistered);
    expect(canSyncNow(undefined, { clientName: 'x', scheduled: false })?.message).toBe('tenant "x" is not registered');
  });

  it('starts and pauses a tenant: switch and status move together, written once', async () => {
    const name = tenantName(seed, 'globex');
    const read = () => readSyncSwitch(service, name, { cluster: seed.cluster });
    expect(await read()).toEqual({ sync_enabled: true, status: 'active' });
    const paused = await inCluster(seed.cluster, async (c) => {
      const t = (await findTenant(c, name, seed.cluster))!;
      return applySyncSwitch(c, t, { sync_enabled: false });
    });
    expect(paused).toEqual({ status: 'paused', sync_enabled: false, changed: true });
    expect(await read()).toEqual({ sync_enabled: false, status: 'paused' });
    const again = await inCluster(seed.cluster, async (c) =>
      applySyncSwitch(c, (await findTenant(c, name, seed.cluster))!, { status: 'paused' }),
    );
    expect(again.changed).toBe(false);
    const started = await inCluster(seed.cluster, async (c) =>
      applySyncSwitch(c, (await findTenant(c, name, seed.cluster))!, { status: 'active' }),
    );
    expect(started).toEqual({ status: 'active', sync_enabled: true, changed: true });
    expect(await read()).toEqual({ sync_enabled: true, status: 'active' });
    expect(await readSyncSwitch(service, 'nobody', { cluster: seed.cluster })).toBeUndefined();
  });

  it('reads the cluster status: lease and hosts, in either order', async () => {
    const s = await inCluster(seed.cluster, (c) => readClusterStatus(c, seed.cluster));
    expect(s.cluster_name).toBe(seed.cluster);
    expect(s.leader).toMatchObject({ leader_id: 'node-a@api-host', host_id: seed.hostA, epoch: 3, lease_valid: true });
    expect(s.nodes.map((n) => n.node_name)).toEqual(['node-a', 'node-b']);
    expect(s.nodes[0]).toMatchObject({ is_leader: true, cluster_name: seed.cluster, version: '0.1.0' });
    const leaderFirst = await inCluster(seed.cluster, (c) =>
      readClusterStatus(c, seed.cluster, { order: 'leaderFirst' }),
    );
    expect(leaderFirst.nodes[0]?.is_leader).toBe(true);
    const none = await inCluster('tn-none', (c) => readClusterStatus(c, 'tn-none'));
    expect(none).toEqual({ cluster_name: 'tn-none', leader: null, nodes: [] });
  });
});
