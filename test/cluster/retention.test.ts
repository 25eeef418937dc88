// Stays whole (over 400 lines): every retention rule is checked on one shared two-cluster fixture, so each proves it leaves the other cluster's rows alone.
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  registerHost,
  LeaderElector,
  pruneHistoryBatch,
  runMaintenancePass,
  startMaintenance,
  validateMaintenanceSettings,
  type MaintenanceSettings,
  createBoss,
} from '@owui-sync/engine/cluster';
import { LeadershipLostError, silentLogger } from '@owui-sync/engine';
import { SYNC_QUEUE, SYNC_QUEUE_OPTIONS } from '@owui-sync/schema';
import { createClusterRole, type TestClusterRole } from '../support/cluster-roles.ts';
import { adminQuery, createTestRole, useTestDatabase, withConnection, withUser } from '../support/db.ts';

/**
 * Bounded history: the leader prunes old sync_jobs, conflicts, failed rows, cache events and leftover progress rows
 * through sync_metadata.prune_history as the restricted service role, only with the live lease's epoch, only its
 * own cluster's rows, in bounded batches, keeping what is still needed; pg-boss prunes its own jobs.
 */

const A = 'ret-a';
const B = 'ret-b';
const HOUR = 3600;
const DAY = 86_400;

const settings = (over: Partial<MaintenanceSettings> = {}): MaintenanceSettings =>
  validateMaintenanceSettings({
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
    ...over,
  });

type Ids = { hostA: string; hostB: string; t1: string; t2: string; t3: string; b1: string };

describe('history retention', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  let elector: LeaderElector;
  let follower: LeaderElector;
  let roleB: TestClusterRole;
  const ids = {} as Ids;

  const admin = (sql: string, params: unknown[] = []) => adminQuery(db.current.adminUrl, sql, params);
  const count = async (sql: string, params: unknown[] = []) =>
    Number((await admin(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0].n);

  async function addJobs(
    deployment: string,
    n: number,
    ageSeconds: number,
    extra: { status?: string; details?: object } = {},
  ) {
    await admin(
      `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by, details,
                                             created_at, started_at, completed_at)
       SELECT d.deployment_id, d.client_name, $3::text, 'incremental', 'scheduler', $4::jsonb,
              now() - make_interval(secs => $2::double precision + g), now() - make_interval(secs => $2::double precision + g),
              CASE WHEN $3::text IN ('pending', 'running') THEN NULL ELSE now() - make_interval(secs => $2::double precision + g - 1) END
         FROM sync_metadata.client_deployments d, generate_series(1, $5::int) g
        WHERE d.deployment_id = $1::uuid`,
      [deployment, ageSeconds, extra.status ?? 'success', extra.details ? JSON.stringify(extra.details) : null, n],
    );
  }

  async function seed() {
    for (const t of ['sync_jobs', 'conflict_log', 'cache_events', 'sync_progress']) {
      await admin(`DELETE FROM sync_metadata.${t}`);
    }
    await admin('DELETE FROM sync_state.failed_rows');
    // t1: 50 finished jobs 40 days old, one running job 45 days old, 5 recent, 20 skipped runs 2 days old,
    // 5 skipped runs 30 minutes old.
    await addJobs(ids.t1, 50, 40 * DAY);
    await addJobs(ids.t1, 1, 45 * DAY, { status: 'running' });
    await addJobs(ids.t1, 5, DAY);
    await addJobs(ids.t1, 20, 2 * DAY, { details: { skipped: 'source unchanged since the last run' } });
    await addJobs(ids.t1, 5, 1800, { details: { skipped: 'source unchanged since the last run' } });
    // t2: a single job, 60 days old: the tenant's latest, kept.
    await addJobs(ids.t2, 1, 60 * DAY, { status: 'failed' });
    // b1 (the other cluster): old jobs the leader of ret-a must not touch.
    await addJobs(ids.b1, 20, 40 * DAY);

    const conflict = `INSERT INTO sync_metadata.conflict_log (client_id, deployment_id, table_name, row_key,
                        resolution_strategy, resolution, detected_at, resolved_at)
                      SELECT 'c', $1::uuid, 'chat', to_jsonb(g), 'newest_wins', $3::text,
                             now() - make_interval(secs => $2::double precision + 60),
                             CASE WHEN $3::text = 'pending' THEN NULL ELSE now() - make_interval(secs => $2::double precision) END
                        FROM generate_series(1, $4::int) g`;
    await admin(conflict, [ids.t1, 40 * DAY, 'source', 10]); // deleted
    await admin(conflict, [ids.t1, 10 * DAY, 'source', 3]); // kept (30-day default)
    await admin(conflict, [ids.t1, 100 * DAY, 'pending', 2]); // unresolved: kept
    await admin(conflict, [ids.t3, 10 * DAY, 'source', 4]); // deleted: t3's config keeps 5 days
    await admin(conflict, [ids.t3, 2 * DAY, 'source', 1]); // kept
    await admin(conflict, [ids.b1, 40 * DAY, 'source', 6]); // other cluster: kept

    const failed = `INSERT INTO sync_state.failed_rows (deployment_id, table_name, row_key, key_values, error,
                      first_failed_at, last_failed_at, resolved_at)
                    SELECT $1::uuid, 'chat', $4::text || g, '[]', 'boom', now() - make_interval(secs => $2::double precision),
                           now() - make_interval(secs => $2::double precision),
                           CASE WHEN $3::boolean THEN now() - make_interval(secs => $2::double precision) END
                      FROM generate_series(1, $5::int) g`;
    await admin(failed, [ids.t1, 40 * DAY, true, 'old', 10]); // deleted
    await admin(failed, [ids.t1, 100 * DAY, false, 'open', 3]); // unresolved: kept
    await admin(failed, [ids.t1, DAY, true, 'new', 2]); // kept

    const events = `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action, created_at)
                    SELECT $1::uuid, 'k' || g, 'invalidate', now() - make_interval(secs => $2::double precision)
                      FROM generate_series(1, $3::int) g`;
    await admin(events, [ids.hostA, 2 * DAY, 30]); // deleted
    await admin(events, [ids.hostA, 60, 5]); // kept
    await admin(events, [ids.hostB, 2 * DAY, 4]); // other cluster: kept

    const progress = `INSERT INTO sync_metadata.sync_progress (deployment_id, table_name, phase, updated_at)
                      VALUES ($1::uuid, $2::text, 'done', now() - make_interval(secs => $3::double precision))`;
    await admin(progress, [ids.t1, 'chat', 100 * DAY]); // table exists: kept
    await admin(progress, [ids.t1, 'gone', 10 * DAY]); // table dropped: deleted
    await admin(progress, [ids.t1, 'gone_recent', DAY]); // dropped recently: kept
  }

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: db.current.serviceUrl, max: 4 });
    ids.hostA = await registerHost(pool, { cluster: A, hostname: 'ret-host', nodeName: 'node-a', role: 'node' });
    const hostA2 = await registerHost(pool, { cluster: A, hostname: 'ret-host', nodeName: 'node-b', role: 'node' });
    ids.hostB = await registerHost(pool, { cluster: B, hostname: 'ret-host', nodeName: 'node-a', role: 'node' });
    const tenant = async (name: string, host: string, config: object | null = null) =>
      (
        await admin(
          `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status,
                                                         conflict_config)
           VALUES ($1::text, $2::uuid, $3::text, true, 'active', $4::jsonb) RETURNING deployment_id::text AS id`,
          [name, host, `tenant_${name.replace(/-/g, '_')}`, config ? JSON.stringify(config) : null],
        )
      ).rows[0].id as string;
    ids.t1 = await tenant('ret-t1', ids.hostA);
    ids.t2 = await tenant('ret-t2', ids.hostA);
    ids.t3 = await tenant('ret-t3', ids.hostA, { resolution_log: { retention_days: 5 } });
    ids.b1 = await tenant('ret-b1', ids.hostB);
    await admin('CREATE SCHEMA tenant_ret_t1; CREATE TABLE tenant_ret_t1.chat (id integer)');
    roleB = await createClusterRole(db.current, B, 'rt');

    const make = (name: string, hostId: string) =>
      new LeaderElector({
        pool,
        cluster: A,
        leaderId: `${name}@ret-host`,
        hostId,
        leaseSeconds: 30,
        renewSeconds: 10,
        logger: silentLogger(),
      });
    elector = make('node-a', ids.hostA);
    await elector.start();
    follower = make('node-b', hostA2);
    await follower.start();
    expect(elector.isLeader()).toBe(true);
    expect(follower.isLeader()).toBe(false);
  });

  afterAll(async () => {
    await follower?.stop();
    await elector?.stop();
    await pool?.end();
  });

  beforeEach(seed);

  const callPrune = (url: string, args: [string, string, number, string, number]) =>
    withConnection(url, (c) =>
      c.query(
        'SELECT sync_metadata.prune_history($1::text, $2::text, $3::bigint, $4::interval, $5::integer) AS n',
        args,
      ),
    );

  it('the service role still cannot DELETE or TRUNCATE history directly', async () => {
    for (const sql of [
      'DELETE FROM sync_metadata.sync_jobs',
      'DELETE FROM sync_metadata.conflict_log',
      'DELETE FROM sync_metadata.cache_events',
      'DELETE FROM sync_metadata.sync_progress',
      'DELETE FROM sync_state.failed_rows',
      'TRUNCATE sync_metadata.sync_jobs',
    ]) {
      await expect(pool.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
    expect(await count('sync_metadata.sync_jobs')).toBe(102);
  });

  it('refuses a stale or foreign epoch, a retention under an hour, another cluster and unmapped roles', async () => {
    const epoch = elector.epoch()!;
    const before = await count('sync_metadata.sync_jobs');
    const url = db.current.serviceUrl;
    await expect(callPrune(url, ['sync_jobs', A, epoch - 1, '30 days', 100])).rejects.toMatchObject({ code: '55000' });
    await expect(callPrune(url, ['sync_jobs', A, epoch + 1, '30 days', 100])).rejects.toMatchObject({ code: '55000' });
    // ret-b has no leader at all: no epoch is valid there.
    await expect(callPrune(url, ['sync_jobs', B, epoch, '30 days', 100])).rejects.toMatchObject({ code: '55000' });
    await expect(callPrune(url, ['sync_jobs', A, epoch, '30 minutes', 100])).rejects.toMatchObject({ code: '22023' });
    await expect(callPrune(url, ['row_state', A, epoch, '30 days', 100])).rejects.toMatchObject({ code: '22023' });
    // ret-b's own role may not prune ret-a, even with ret-a's live epoch.
    await expect(callPrune(roleB.url, ['sync_jobs', A, epoch, '30 days', 100])).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/may not prune the history of cluster ret-a/),
    });
    // A role outside the install cannot even call it.
    const stranger = await createTestRole('ret');
    await adminQuery(db.current.adminUrl, `GRANT USAGE ON SCHEMA sync_metadata TO ${stranger.role}`);
    await expect(
      callPrune(withUser(db.current.adminUrl, stranger.role, stranger.password), [
        'sync_jobs',
        A,
        epoch,
        '30 days',
        100,
      ]),
    ).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/permission denied for function prune_history/),
    });
    // A follower's fenced call never reaches the database.
    await expect(
      pruneHistoryBatch({ elector: follower, cluster: A, settings: settings() }, 'sync_jobs'),
    ).rejects.toBeInstanceOf(LeadershipLostError);
    expect(await count('sync_metadata.sync_jobs')).toBe(before);
  });

  it('deletes at most one batch per call', async () => {
    const opts = { elector, cluster: A, settings: settings({ batchSize: 7 }) };
    expect(await pruneHistoryBatch(opts, 'sync_jobs')).toBe(7);
    expect(await pruneHistoryBatch(opts, 'cache_events')).toBe(7);
    expect(await count('sync_metadata.sync_jobs')).toBe(102 - 7);
    // Only old finished rows of ret-a went.
    const left = await admin(
      `SELECT count(*) FILTER (WHERE status = 'running')::int AS running,
              count(*) FILTER (WHERE status = 'success' AND started_at < now() - interval '30 days')::int AS old
         FROM sync_metadata.sync_jobs WHERE deployment_id = $1::uuid`,
      [ids.t1],
    );
    expect(left.rows[0]).toEqual({ running: 1, old: 43 });
    expect(await count('sync_metadata.sync_jobs WHERE deployment_id = $1::uuid', [ids.b1])).toBe(20);
  });

  it('a pass bounds every kind of history and keeps what is still needed', async () => {
    const result = await runMaintenancePass({ elector, cluster: A, settings: settings({ batchSize: 7 }) });
    expect(result.interrupted).toBe(false);
    expect(result.deleted).toEqual({
      skipped_runs: 20,
      sync_jobs: 50,
      conflict_log: 14,
      failed_rows: 10,
      cache_events: 30,
      sync_progress: 1,
      restore_drills: 0,
    });
    // t1: the running job, 5 recent jobs and 5 skipped runs younger than a day; t2's only (old) job; b1 untouched.
    const jobs = await admin(
      `SELECT d.client_name, j.status, coalesce(j.details ? 'skipped', false) AS skipped, count(*)::int AS n
         FROM sync_metadata.sync_jobs j JOIN sync_metadata.client_deployments d USING (deployment_id)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    expect(jobs.rows).toEqual([
      { client_name: 'ret-b1', status: 'success', skipped: false, n: 20 },
      { client_name: 'ret-t1', status: 'running', skipped: false, n: 1 },
      { client_name: 'ret-t1', status: 'success', skipped: false, n: 5 },
      { client_name: 'ret-t1', status: 'success', skipped: true, n: 5 },
      { client_name: 'ret-t2', status: 'failed', skipped: false, n: 1 },
    ]);
    expect(await count('sync_metadata.conflict_log WHERE resolved_at IS NULL')).toBe(2);
    expect(await count('sync_metadata.conflict_log WHERE deployment_id = $1::uuid', [ids.t3])).toBe(1);
    expect(await count('sync_metadata.conflict_log WHERE deployment_id = $1::uuid', [ids.b1])).toBe(6);
    expect(await count('sync_metadata.conflict_log')).toBe(3 + 2 + 1 + 6);
    expect(await count('sync_state.failed_rows WHERE resolved_at IS NULL')).toBe(3);
    expect(await count('sync_state.failed_rows')).toBe(5);
    expect(await count('sync_metadata.cache_events')).toBe(5 + 4);
    const progress = await admin('SELECT table_name FROM sync_metadata.sync_progress ORDER BY 1');
    expect(progress.rows.map((r) => r.table_name)).toEqual(['chat', 'gone_recent']);

    // Nothing more is due: the next pass deletes nothing, in one batch per kind.
    const again = await runMaintenancePass({ elector, cluster: A, settings: settings({ batchSize: 7 }) });
    expect(Object.values(again.deleted).every((n) => n === 0)).toBe(true);
    expect(again.batches).toBe(10);
  });

  it('the loop prunes only on the leader, at once on start and then every interval', async () => {
    const old = () => count(`sync_metadata.cache_events WHERE created_at < now() - interval '1 day'`);
    expect(await old()).toBe(34);
    const onFollower = startMaintenance({
      elector: follower,
      cluster: A,
      settings: settings(),
      logger: silentLogger(),
    });
    await onFollower.runNow();
    await onFollower.stop();
    expect(await old()).toBe(34);
    const onLeader = startMaintenance({
      elector,
      cluster: A,
      settings: settings({ batchSize: 5, intervalSeconds: 0.2 }),
      logger: silentLogger(),
    });
    try {
      await onLeader.runNow();
      expect(await old()).toBe(4); // ret-b's events stay
      await admin(
        `INSERT INTO sync_metadata.cache_events (host_id, cache_key, action, created_at)
         VALUES ($1::uuid, 'late', 'invalidate', now() - interval '2 days')`,
        [ids.hostA],
      );
      const started = Date.now();
      while ((await old()) > 4 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
      expect(await old()).toBe(4);
    } finally {
      await onLeader.stop();
    }
  });

  it('history stays bounded while runs keep coming', async () => {
    // Every round adds 300 runs that are already past a one-hour retention and 10 inside it; after each pass
    // the tenant keeps only what is inside the window (plus its latest job and the running one).
    const short = settings({
      batchSize: 100,
      retentionSeconds: {
        skipped_runs: HOUR,
        sync_jobs: HOUR,
        conflict_log: HOUR,
        failed_rows: HOUR,
        cache_events: HOUR,
        sync_progress: HOUR,
        restore_drills: HOUR,
      },
    });
    await admin('DELETE FROM sync_metadata.sync_jobs WHERE deployment_id = $1::uuid', [ids.t1]);
    await addJobs(ids.t1, 1, 45 * DAY, { status: 'running' });
    const sizes: number[] = [];
    for (let round = 1; round <= 4; round += 1) {
      await addJobs(ids.t1, 200, 2 * HOUR);
      await addJobs(ids.t1, 100, 3 * HOUR, { details: { skipped: 'source unchanged since the last run' } });
      await addJobs(ids.t1, 10, 60 * (round * 10));
      await runMaintenancePass({ elector, cluster: A, settings: short });
      sizes.push(await count('sync_metadata.sync_jobs WHERE deployment_id = $1::uuid', [ids.t1]));
    }
    // 10 new in-window rows per round, the running job; never the 300 old ones of any round.
    expect(sizes).toEqual([11, 21, 31, 41]);
  });

  it('pg-boss prunes its own finished jobs as the service role (the queue’s deleteAfterSeconds)', async () => {
    const boss: PgBoss = createBoss({ connectionString: db.current.serviceUrl, max: 2 });
    await boss.start();
    try {
      const id = await boss.send(SYNC_QUEUE, { deployment_id: ids.t1, client_name: 'ret-t1', triggered_by: 'test' });
      expect(id).toBeTruthy();
      const [job] = await boss.fetch(SYNC_QUEUE);
      expect(job?.id).toBe(id);
      await boss.complete(SYNC_QUEUE, id!);
      const recent = await boss.send(SYNC_QUEUE, {
        deployment_id: ids.t2,
        client_name: 'ret-t2',
        triggered_by: 'test',
      });
      // Finished just past the sync queue's deleteAfterSeconds (as installed).
      await admin(
        `UPDATE pgboss.job SET completed_on = now() - make_interval(secs => deletion_seconds + 60) WHERE id = $1::uuid`,
        [id],
      );
      const installed = await admin('SELECT deletion_seconds FROM pgboss.queue WHERE name = $1::text', [SYNC_QUEUE]);
      expect(installed.rows).toEqual([{ deletion_seconds: SYNC_QUEUE_OPTIONS.deleteAfterSeconds }]);
      // As if the last maintenance of the queue were long ago.
      await admin('UPDATE pgboss.queue SET maintain_on = NULL WHERE name = $1::text', [SYNC_QUEUE]);
      await boss.supervise(SYNC_QUEUE);
      expect(await count('pgboss.job WHERE id = $1::uuid', [id])).toBe(0);
      expect(await count('pgboss.job WHERE id = $1::uuid', [recent])).toBe(1);
    } finally {
      await boss.stop({ graceful: false });
    }
  });
});

describe('runs that found the source unchanged', () => {
  const db = useTestDatabase();
  let pool: pg.Pool;
  let deployment: string;
  const SKIPPED = { skipped: 'source unchanged since the last run' };

  /** One run as the worker records it, as the service role: a running row, then its outcome. */
  async function run(details: object | null, by = 'scheduler'): Promise<string> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.current_cluster', $1::text, true)", [A]);
      const job = (
        await c.query(
          `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by)
           VALUES ($1::uuid, 'fold-t1', 'running', 'incremental', $2::text) RETURNING job_id::text AS id`,
          [deployment, by],
        )
      ).rows[0].id as string;
      await c.query(
        `UPDATE sync_metadata.sync_jobs SET status = 'success', details = $2::jsonb, completed_at = now()
          WHERE job_id = $1::uuid`,
        [job, details ? JSON.stringify(details) : null],
      );
      await c.query('COMMIT');
      return job;
    } finally {
      c.release();
    }
  }

  const jobs = async () =>
    (
      await adminQuery(
        db.current.adminUrl,
        `SELECT job_id::text AS id, details FROM sync_metadata.sync_jobs WHERE deployment_id = $1::uuid
          ORDER BY started_at, job_id`,
        [deployment],
      )
    ).rows as { id: string; details: Record<string, unknown> | null }[];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: db.current.serviceUrl, max: 2 });
    const host = await registerHost(pool, { cluster: A, hostname: 'fold-host', nodeName: 'node-a', role: 'node' });
    deployment = (
      await adminQuery(
        db.current.adminUrl,
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status)
         VALUES ('fold-t1', $1::uuid, 'tenant_fold_t1', true, 'active') RETURNING deployment_id::text AS id`,
        [host],
      )
    ).rows[0].id as string;
  });

  afterAll(async () => {
    await pool?.end();
  });

  it('a streak of unchanged checks is one row: the latest check, how many, since when', async () => {
    const real = await run({ capture: 'x' });
    const first = await run(SKIPPED);
    const [, firstRow] = await jobs();
    expect(firstRow).toEqual({ id: first, details: SKIPPED });
    const since = (
      await adminQuery(
        db.current.adminUrl,
        "SELECT to_jsonb(started_at) #>> '{}' AS t FROM sync_metadata.sync_jobs WHERE job_id = $1::uuid",
        [first],
      )
    ).rows[0].t as string;
    await run(SKIPPED);
    const last = await run(SKIPPED);
    let rows = await jobs();
    expect(rows.map((r) => r.id)).toEqual([real, last]);
    expect(rows[1]!.details).toMatchObject({ ...SKIPPED, checks: 3, unchanged_since: since });

    // A run that changed something ends the streak; its row and the streak's last check both stay.
    const changed = await run({ capture: 'y' });
    const again = await run(SKIPPED);
    rows = await jobs();
    expect(rows.map((r) => r.id)).toEqual([real, last, changed, again]);
    expect(rows[3]!.details).toEqual(SKIPPED);

    // A person's check is not folded into the scheduler's streak, nor the scheduler's into it.
    const alice = await run(SKIPPED, 'alice');
    const next = await run(SKIPPED);
    const afterNext = await run(SKIPPED);
    rows = await jobs();
    expect(rows.map((r) => r.id)).toEqual([real, last, changed, again, alice, afterNext]);
    expect(next).not.toBe(afterNext);
    expect(rows[5]!.details).toMatchObject({ checks: 2 });
    // The service role still cannot delete a job itself.
    await expect(pool.query('DELETE FROM sync_metadata.sync_jobs')).rejects.toMatchObject({ code: '42501' });
  });
});
