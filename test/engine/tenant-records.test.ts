import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '@owui-sync/engine';
import { hostIdentity } from '@owui-sync/engine/cluster';
import {
  clusterHistoryCounts,
  deleteTenant,
  findConflict,
  hostForRegistration,
  insertTenant,
  LAST_SYNC_AT_SQL,
  listConflictLog,
  listSyncJobs,
  orphanTenantCount,
  readTenantRow,
  schemaOwner,
  tenantExists,
  tenantRowVersions,
  tenantSource,
  updateTenantSettings,
} from '@owui-sync/engine/tenants';
import { seedCluster, tenantName, type SeededCluster } from '../api/support.ts';
import { useTestDatabase } from '../support/db.ts';

/**
 * The tenants/ modules the API, syncctl and the state cache share: registration, settings, job history, conflict
 * log and last sync, against a real database with two seeded clusters (each with three tenants, three jobs and one
 * unresolved conflict).
 */
describe('tenant records', () => {
  const db = useTestDatabase();
  let seed: SeededCluster;
  let other: SeededCluster;
  let admin: pg.Pool;
  let service: pg.Pool;

  beforeAll(async () => {
    seed = await seedCluster(db.current, 'tr-a');
    other = await seedCluster(db.current, 'tr-b');
    admin = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    service = new pg.Pool({ connectionString: db.current.serviceUrl, max: 2 });
  });

  afterAll(async () => {
    await admin?.end();
    await service?.end();
  });

  const inCluster = <T>(cluster: string, fn: (c: pg.PoolClient) => Promise<T>) =>
    withTransaction(service, fn, { cluster });

  it('tells whether a name is registered, in one cluster or in any, and where its SQLite file is', async () => {
    const acme = tenantName(seed, 'acme');
    expect(await inCluster(seed.cluster, (c) => tenantExists(c, acme, seed.cluster))).toBe(true);
    expect(await inCluster(seed.cluster, (c) => tenantExists(c, acme, other.cluster))).toBe(false);
    expect(await tenantExists(admin, acme)).toBe(true);
    expect(await tenantExists(admin, tenantName(other, 'acme'))).toBe(true);
    expect(await tenantExists(admin, 'nobody')).toBe(false);
    expect(await tenantSource(admin, acme)).toEqual({
      deployment_id: seed.tenants.acme,
      sqlite_path: `/data/${acme}/webui.db`,
    });
    expect(await tenantSource(admin, 'nobody')).toBeUndefined();
  });

  it("lists the cluster's sync jobs newest first, filtered by tenant, state and count", async () => {
    const all = await inCluster(seed.cluster, (c) => listSyncJobs(c, seed.cluster, { limit: 10 }));
    expect(all.map((j) => [j.client_name, j.status, j.rows_synced])).toEqual([
      [tenantName(seed, 'acme'), 'success', '300'],
      [tenantName(seed, 'globex'), 'failed', '200'],
      [tenantName(seed, 'acme'), 'success', '100'],
    ]);
    expect(all[1]).toMatchObject({
      job_id: expect.any(String),
      rows_failed: '0',
      rows_deleted: '0',
      duration_seconds: '1.500',
      error: 'source database locked',
      started_at: expect.any(Date),
      completed_at: expect.any(Date),
    });
    const globex = await inCluster(seed.cluster, (c) =>
      listSyncJobs(c, seed.cluster, { clientName: tenantName(seed, 'globex'), limit: 10 }),
    );
    expect(globex.map((j) => j.status)).toEqual(['failed']);
    const failed = await inCluster(seed.cluster, (c) => listSyncJobs(c, seed.cluster, { status: 'failed', limit: 10 }));
    expect(failed.map((j) => j.client_name)).toEqual([tenantName(seed, 'globex')]);
    const newest = await inCluster(seed.cluster, (c) => listSyncJobs(c, seed.cluster, { limit: 1 }));
    expect(newest.map((j) => j.job_id)).toEqual([all[0]?.job_id]);
    // Another cluster's tenant is not this cluster's, even by name, even on an admin connection.
    const elsewhere = await listSyncJobs(admin, seed.cluster, { clientName: tenantName(other, 'acme'), limit: 10 });
    expect(elsewhere).toEqual([]);
  });

  it("lists the cluster's conflicts (unresolved by default, with or without the row versions) and finds one", async () => {
    const acme = tenantName(seed, 'acme');
    const open = await inCluster(seed.cluster, (c) => listConflictLog(c, seed.cluster, { limit: 10 }));
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({
      log_id: String(seed.conflictId),
      client_id: acme,
      table_name: 'chat',
      row_key: { id: 'c1' },
      source_data: { id: 'c1', title: 'Local', updated_at: 300 },
      target_data: { id: 'c1', title: 'Remote', updated_at: 200 },
      resolved_data: null,
      resolution_strategy: 'manual',
      resolution: 'pending',
      job_id: null,
      resolved_at: null,
    });
    const bare = await inCluster(seed.cluster, (c) => listConflictLog(c, seed.cluster, { limit: 10, withData: false }));
    expect(bare[0]).toMatchObject({ log_id: String(seed.conflictId), client_id: acme });
    expect(bare[0]).not.toHaveProperty('source_data');
    expect(bare[0]).not.toHaveProperty('target_data');
    expect(bare[0]).not.toHaveProperty('resolved_data');
    const count = (filter: Parameters<typeof listConflictLog>[2]) =>
      inCluster(seed.cluster, async (c) => (await listConflictLog(c, seed.cluster, filter)).length);
    expect(await count({ limit: 10, resolved: true })).toBe(0);
    expect(await count({ limit: 10, resolved: 'all' })).toBe(1);
    expect(await count({ limit: 10, table: 'chat' })).toBe(1);
    expect(await count({ limit: 10, table: 'user' })).toBe(0);
    expect(await count({ limit: 10, clientName: acme })).toBe(1);
    expect(await count({ limit: 10, clientName: tenantName(seed, 'globex') })).toBe(0);
    expect(await count({ limit: 10, clientName: tenantName(other, 'acme') })).toBe(0);

    expect(await inCluster(seed.cluster, (c) => findConflict(c, seed.cluster, seed.conflictId))).toEqual({
      client_id: acme,
      resolved_at: null,
      resolution_strategy: 'manual',
    });
    expect(await findConflict(admin, other.cluster, seed.conflictId)).toBeUndefined();
    expect(await findConflict(admin, seed.cluster, 999_999_999)).toBeUndefined();
  });

  it("reads the newest last sync of the session's tenants, as /health embeds it", async () => {
    const newest = async (cluster: string) =>
      (
        await admin.query<{ last: Date | null }>(
          `SELECT max(d.last_sync_at) AS last FROM sync_metadata.client_deployments d
             JOIN sync_metadata.hosts h ON h.host_id = d.host_id WHERE h.cluster_name = $1`,
          [cluster],
        )
      ).rows[0]?.last;
    const embedded = async (c: Pick<pg.PoolClient, 'query'>) =>
      (await c.query<{ last: Date | null }>(`SELECT ${LAST_SYNC_AT_SQL} AS last`)).rows[0]?.last;
    const seedLast = await newest(seed.cluster);
    const otherLast = await newest(other.cluster);
    expect(seedLast).toBeInstanceOf(Date);
    // The second cluster was seeded later, and an admin connection sees every cluster.
    expect(otherLast!.getTime()).toBeGreaterThan(seedLast!.getTime());
    expect(await embedded(admin)).toEqual(otherLast);
    // Inside a cluster's scope the session sees only that cluster's tenants.
    expect(await inCluster(seed.cluster, embedded)).toEqual(seedLast);
    expect(await inCluster(other.cluster, embedded)).toEqual(otherLast);
  });

  it("reads and writes a tenant's settings, and the rows' versions", async () => {
    const globex = tenantName(seed, 'globex');
    const before = await inCluster(seed.cluster, (c) => readTenantRow(c, globex, seed.cluster));
    expect(before).toMatchObject({ deployment_id: seed.tenants.globex, client_name: globex, sync_interval: 300 });
    expect(await inCluster(seed.cluster, (c) => readTenantRow(c, globex, other.cluster))).toBeUndefined();
    await admin.query(
      "UPDATE sync_metadata.client_deployments SET next_sync_at = now() + interval '1 hour' WHERE deployment_id = $1",
      [seed.tenants.globex],
    );

    const write = (patch: Parameters<typeof updateTenantSettings>[2]) =>
      inCluster(seed.cluster, async (c) => {
        const row = await readTenantRow(c, globex, seed.cluster, { forUpdate: true });
        return updateTenantSettings(c, row!.deployment_id, patch);
      });
    const config = { default_strategy: 'merge', table_strategies: {} };
    const merged = await write({ conflict_config: config, conflict_strategy: 'merge', container_name: 'owui-g' });
    expect(merged).toMatchObject({
      conflict_config: config,
      conflict_strategy: 'merge',
      container_name: 'owui-g',
      sync_interval: 300,
      next_sync_at: expect.any(Date),
    });
    expect(merged!.updated_at.getTime()).toBeGreaterThan(before!.updated_at.getTime());
    const interval = await write({ sync_interval: 600, clearNextSync: true });
    expect(interval).toMatchObject({
      sync_interval: 600,
      next_sync_at: null,
      conflict_config: config,
      container_name: 'owui-g',
    });
    const cleared = await write({ conflict_config: null, container_name: null });
    expect(cleared).toMatchObject({ conflict_config: null, container_name: null, conflict_strategy: 'merge' });
    expect(await readTenantRow(admin, globex, seed.cluster)).toEqual(cleared);
    expect(await updateTenantSettings(admin, '00000000-0000-0000-0000-000000000000', { sync_interval: 5 })).toBe(
      undefined,
    );

    const versions = await inCluster(seed.cluster, (c) =>
      tenantRowVersions(c, seed.cluster, [globex, 'nobody', tenantName(other, 'globex')]),
    );
    expect(versions).toEqual([{ client_name: globex, updated_at: cleared!.updated_at }]);
  });

  it('attaches a new tenant to a node, else a worker, never an API-only or admin host while those exist', async () => {
    const cluster = 'tr-reg';
    const pick = (c: string, hostname = 'reg-host') =>
      hostForRegistration(admin, { cluster: c, hostname, adminNodeName: 'syncctl' });
    // No host yet: this machine's admin row, created once and revived after.
    const first = await pick(cluster);
    expect(first).toEqual({
      host_id: hostIdentity({ cluster, hostname: 'reg-host', nodeName: 'syncctl' }),
      node_name: 'syncctl',
      created: true,
    });
    expect(await pick(cluster)).toEqual({ ...first, created: false });

    const host = async (c: string, node: string, role: string, age: string) =>
      (
        await admin.query<{ host_id: string }>(
          `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name, role, created_at)
           VALUES (sync_metadata.host_identity($1, 'reg-host', $2), 'reg-host', $1, $2, $3,
                   now() - $4::interval) RETURNING host_id::text`,
          [c, node, role, age],
        )
      ).rows[0]?.host_id as string;
    const api = await host(cluster, 'api-1', 'api', '0 seconds');
    expect((await pick(cluster)).node_name).toBe('syncctl');
    const worker = await host(cluster, 'worker-1', 'worker', '1 minute');
    expect(await pick(cluster)).toEqual({ host_id: worker, node_name: 'worker-1', created: false });
    const node = await host(cluster, 'node-a', 'node', '1 hour');
    expect(await pick(cluster)).toEqual({ host_id: node, node_name: 'node-a', created: false });
    expect([api, first.host_id]).not.toContain((await pick(cluster)).host_id);
    // A cluster with only an API-only host gets an admin row, not the API host.
    const apiOnly = await host('tr-api', 'api-1', 'api', '0 seconds');
    const fallback = await pick('tr-api');
    expect(fallback).toMatchObject({ node_name: 'syncctl', created: true });
    expect(fallback.host_id).not.toBe(apiOnly);
  });

  it('registers a tenant once, guards its schema, counts what a cluster holds and deletes it', async () => {
    const cluster = 'tr-reg';
    const host = await hostForRegistration(admin, { cluster, hostname: 'reg-host', adminNodeName: 'syncctl' });
    const tenant = {
      clientName: 'tr-new',
      hostId: host.host_id,
      containerName: 'openwebui-tr-new',
      sqlitePath: '/data/tr-new/webui.db',
      schemaName: 'client_tr_new',
      syncEnabled: false,
      status: 'registered',
      syncInterval: 120,
      openwebuiVersion: '0.6.5',
      sqliteRealpath: null,
    };
    await withTransaction(admin, (c) => insertTenant(c, tenant));
    expect(await tenantExists(admin, 'tr-new', cluster)).toBe(true);
    const row = await readTenantRow(admin, 'tr-new', cluster);
    expect(row).toMatchObject({
      status: 'registered',
      sync_enabled: false,
      sync_interval: 120,
      container_name: 'openwebui-tr-new',
      sqlite_path: '/data/tr-new/webui.db',
      schema_name: 'client_tr_new',
      openwebui_version: '0.6.5',
    });
    await expect(withTransaction(admin, (c) => insertTenant(c, tenant))).rejects.toMatchObject({ code: '23505' });
    expect(await schemaOwner(admin, 'client_tr_new', 'tr_new')).toBe('tr-new');
    expect(await schemaOwner(admin, 'client_tr_new', 'tr-new')).toBeUndefined();

    expect(await clusterHistoryCounts(admin, seed.cluster)).toEqual({ jobs: 3, conflicts: 1 });
    expect(await clusterHistoryCounts(admin, cluster)).toEqual({ jobs: 0, conflicts: 0 });
    expect(await orphanTenantCount(admin)).toBe(0);

    await withTransaction(admin, (c) => deleteTenant(c, row!.deployment_id));
    expect(await tenantExists(admin, 'tr-new')).toBe(false);
  });
});
