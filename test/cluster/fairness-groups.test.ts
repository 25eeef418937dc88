import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerHost, LeaderElector, createBoss, runSchedulerTick } from '@owui-sync/engine/cluster';
import { silentLogger } from '@owui-sync/engine';
import { PGBOSS_SCHEMA, SYNC_QUEUE } from '@owui-sync/schema';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl } from '../support/pooler.ts';

/**
 * Which fairness group the scheduler gives a due tenant's job (real scheduler pass, real pg-boss rows): large by the
 * file size change capture recorded, failing by the last run — but only while failures are isolated; when many
 * tenants fail at once their jobs run ungrouped, so the fleet's recovery is not squeezed through one slot.
 */

const CLUSTER = 'groups-cluster';

describe('fairness groups of scheduled jobs', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  let boss: PgBoss;
  let elector: LeaderElector;
  let hostId: string;

  beforeAll(async () => {
    const url = await clusterUrl(db.current.serviceUrl);
    pool = new pg.Pool({ connectionString: url.url, max: 4 });
    boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 2 });
    await boss.start();
    hostId = await registerHost(pool, { cluster: CLUSTER, hostname: 'h', nodeName: 'node-a', role: 'node' });
    elector = new LeaderElector({
      pool,
      cluster: CLUSTER,
      leaderId: 'node-a@h',
      hostId,
      leaseSeconds: 30,
      renewSeconds: 10,
      logger: silentLogger(),
    });
    await elector.start();
    for (let i = 0; i < 100 && !elector.isLeader(); i += 1) await new Promise((r) => setTimeout(r, 50));
  });

  afterAll(async () => {
    await elector?.stop();
    await boss?.stop({ graceful: false });
    await pool?.end();
  });

  /** Registers `n` tenants (`prefix`1…n), all due now, with the given last status and recorded file size. */
  async function tenants(prefix: string, n: number, status: string, megabytes: number | null): Promise<void> {
    await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, schema_name, sync_enabled, status, sync_interval, last_sync_status)
       SELECT $1 || i, $2::uuid, 'client_' || $1 || i, true, 'active', 300, $3
         FROM generate_series(1, $4::int) i`,
      [prefix, hostId, status, n],
    );
    if (megabytes !== null) {
      await adminQuery(
        db.current.adminUrl,
        `INSERT INTO sync_state.source_pages (deployment_id, file_id, page_size, page_count)
         SELECT deployment_id, 'f', 4096, $2::int FROM sync_metadata.client_deployments WHERE client_name LIKE $1 || '%'`,
        [prefix, megabytes * 256],
      );
    }
  }

  async function groups(): Promise<Map<string, string | null>> {
    const r = await adminQuery(
      db.current.adminUrl,
      `SELECT singleton_key AS key, group_id FROM ${PGBOSS_SCHEMA}.job WHERE name = $1 AND state = 'created'`,
      [SYNC_QUEUE],
    );
    return new Map((r.rows as { key: string; group_id: string | null }[]).map((x) => [x.key, x.group_id]));
  }

  it('large by recorded size, failing while failures are isolated, ungrouped when many fail together', async () => {
    expect(elector.isLeader()).toBe(true);
    await tenants('small', 30, 'success', 1);
    await tenants('big', 2, 'success', 300);
    await tenants('never', 1, 'pending', null);
    await tenants('broken', 2, 'failed', 1);
    await runSchedulerTick({ elector, boss, cluster: CLUSTER, largeTenantMb: 256 });
    let g = await groups();
    expect(g.get('small1')).toBeNull();
    expect(g.get('never1')).toBeNull();
    expect([g.get('big1'), g.get('big2')]).toEqual(['large', 'large']);
    expect([g.get('broken1'), g.get('broken2')]).toEqual(['failing', 'failing']);

    // Storage gone for many tenants at once (more than 10 and more than 5 % of the cluster): no cap.
    await adminQuery(db.current.adminUrl, `DELETE FROM ${PGBOSS_SCHEMA}.job WHERE name = $1`, [SYNC_QUEUE]);
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments SET next_sync_at = NULL, last_sync_at = NULL,
              last_sync_status = CASE WHEN client_name LIKE 'small%' THEN 'failed' ELSE last_sync_status END`,
    );
    await runSchedulerTick({ elector, boss, cluster: CLUSTER, largeTenantMb: 256 });
    g = await groups();
    expect(g.size).toBe(35);
    expect(g.get('small1')).toBeNull();
    expect(g.get('broken1')).toBeNull();
    expect(g.get('big1')).toBe('large');
  });
});
