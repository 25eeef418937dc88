import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerHost,
  LeaderElector,
  pruneHistoryBatch,
  runMaintenancePass,
  validateMaintenanceSettings,
} from '@owui-sync/engine/cluster';
import { silentLogger } from '@owui-sync/engine';
import { adminQuery, useTestDatabase, withConnection } from '../support/db.ts';

/**
 * Restore drill results stay bounded: the leader's maintenance prunes them through sync_metadata.prune_drills (the
 * service role cannot DELETE), only its own cluster's, only under its live lease, keeping each tenant's latest
 * drill and latest passed drill however old.
 */

const DAY = 86_400;
const HOUR = 3600;

describe('restore drill retention', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  let elector: LeaderElector;
  const ids: Record<string, string> = {};
  const admin = (sql: string, params: unknown[] = []) => adminQuery(db.current.adminUrl, sql, params);
  const settings = validateMaintenanceSettings({
    retentionSeconds: {
      skipped_runs: DAY,
      sync_jobs: 30 * DAY,
      conflict_log: 30 * DAY,
      failed_rows: 30 * DAY,
      cache_events: DAY,
      sync_progress: 7 * DAY,
      restore_drills: 30 * DAY,
    },
    batchSize: 7,
    pauseMs: 0,
    intervalSeconds: 60,
  });

  const drills = (deployment: string, n: number, ageDays: number, passed: boolean) =>
    admin(
      `INSERT INTO sync_state.restore_drills (drill_id, deployment_id, passed, triggered_by, started_at, finished_at,
                                              duration_seconds, checks)
       SELECT gen_random_uuid(), $1::uuid, $4::boolean, 'scheduler', now() - make_interval(days => $3::int, secs => g),
              now() - make_interval(days => $3::int, secs => g), 1, '{}'
         FROM generate_series(1, $2::int) g`,
      [deployment, n, ageDays, passed],
    );
  const left = async () =>
    (
      await admin(
        `SELECT d.client_name, r.passed, count(*)::int AS n FROM sync_state.restore_drills r
           JOIN sync_metadata.client_deployments d USING (deployment_id) GROUP BY 1, 2 ORDER BY 1, 2`,
      )
    ).rows;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: db.current.serviceUrl, max: 4 });
    const hostA = await registerHost(pool, { cluster: 'dret-a', hostname: 'h', nodeName: 'node-a', role: 'node' });
    const hostB = await registerHost(pool, { cluster: 'dret-b', hostname: 'h', nodeName: 'node-a', role: 'node' });
    for (const [name, host] of [
      ['dret-1', hostA],
      ['dret-2', hostA],
      ['dret-b', hostB],
    ] as const) {
      ids[name] = (
        await admin(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
           VALUES ($1, $2, $3, true, 'active') RETURNING deployment_id::text AS id`,
          [name, host, `tenant_${name.replace('-', '_')}`],
        )
      ).rows[0].id as string;
    }
    elector = new LeaderElector({
      pool,
      cluster: 'dret-a',
      leaderId: 'node-a@h',
      hostId: hostA,
      leaseSeconds: 30,
      renewSeconds: 10,
      logger: silentLogger(),
    });
    await elector.start();
    expect(elector.isLeader()).toBe(true);
  });

  afterAll(async () => {
    await elector?.stop();
    await pool?.end();
  });

  it('prunes old drills of its cluster in batches, keeping each tenant’s latest and latest passed drill', async () => {
    await expect(pool.query('DELETE FROM sync_state.restore_drills')).rejects.toMatchObject({ code: '42501' });
    // dret-1: 20 passed drills 40 days old, then 10 failed 35 days old (its latest: all failed), 3 recent.
    await drills(ids['dret-1']!, 20, 40, true);
    await drills(ids['dret-1']!, 10, 35, false);
    await drills(ids['dret-1']!, 3, 1, true);
    // dret-2: one passed drill 60 days ago, then 5 failed 50 days ago.
    await drills(ids['dret-2']!, 1, 60, true);
    await drills(ids['dret-2']!, 5, 50, false);
    // The other cluster's old drills are not this leader's to prune.
    await drills(ids['dret-b']!, 8, 40, true);

    const r = await runMaintenancePass({ elector, cluster: 'dret-a', settings });
    expect(r.deleted.restore_drills).toBe(20 + 10 + 4);
    expect(await left()).toEqual([
      { client_name: 'dret-1', passed: true, n: 3 },
      { client_name: 'dret-2', passed: false, n: 1 },
      { client_name: 'dret-2', passed: true, n: 1 },
      { client_name: 'dret-b', passed: true, n: 8 },
    ]);
    expect(await pruneHistoryBatch({ elector, cluster: 'dret-a', settings }, 'restore_drills')).toBe(0);
  });

  it('refuses a stale epoch and a retention under an hour', async () => {
    await expect(
      withConnection(db.current.serviceUrl, (c) =>
        c.query("SELECT sync_metadata.prune_drills('dret-a', 999, interval '1 day', 10)"),
      ),
    ).rejects.toMatchObject({ code: '55000' });
    await expect(
      withConnection(db.current.serviceUrl, (c) =>
        c.query("SELECT sync_metadata.prune_drills('dret-a', 1, make_interval(secs => $1), 10)", [HOUR / 2]),
      ),
    ).rejects.toMatchObject({ code: '22023' });
  });
});
