import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoss, registerHost, startSyncWorker, type SyncWorker } from '@owui-sync/engine/cluster';
import { silentLogger } from '@owui-sync/engine';
import { clusterPriority } from '@owui-sync/engine/queue';
import { provisionTenant, runTenantSync, tenantSchemaName } from '@owui-sync/engine/sync';
import { claimTenant, SyncGroupFullError } from '@owui-sync/engine/tenants';
import { PGBOSS_SCHEMA, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { adminQuery, useTestDatabase } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { waitUntil } from '../support/processes.ts';

/**
 * The fairness groups' caps are exact. pg-boss counts a group's active jobs in the snapshot its fetch starts with,
 * so two workers fetching at once both see the group free and both start one (measured with two concurrent fetches
 * of a queue holding two `large` jobs: both got one in about three pairs of four). The tenant's claim counts the
 * group's live claims under a per-cluster, per-group transaction lock and refuses the run over the cap; the worker
 * queues that job again to start a little later, without failing it or spending a retry.
 */

const CLUSTER = 'group-cap';
const OTHER = 'group-cap-other';

describe('fairness group caps hold across workers', () => {
  const db = useTestDatabase();
  const scratch = scratchDir('owui-group-cap-');
  let url: ClusterUrl;
  let pool: pg.Pool;
  const bosses: PgBoss[] = [];
  const workers: SyncWorker[] = [];
  let hostId: string;
  let otherHostId: string;

  beforeAll(async () => {
    url = await clusterUrl(db.current.serviceUrl);
    pool = new pg.Pool({ connectionString: url.url, max: 6 });
    hostId = await registerHost(pool, { cluster: CLUSTER, hostname: 'cap-host', nodeName: 'node-a', role: 'node' });
    otherHostId = await registerHost(pool, { cluster: OTHER, hostname: 'cap-host', nodeName: 'node-a', role: 'node' });
  });

  afterAll(async () => {
    for (const w of workers) await w.stop({ timeoutMs: 5_000 });
    for (const b of bosses) await b.stop({ graceful: false });
    await pool?.end();
    scratch.cleanup();
  });

  const adminPool = () => new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });

  /** A registered tenant with a small real Open WebUI file, on this cluster's host or the other's. */
  async function tenant(name: string, host = hostId, chats = 40): Promise<string> {
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, { chats });
    const admin = adminPool();
    try {
      await provisionTenant({
        adminPool: admin,
        clientName: name,
        sqlitePath: file,
        serviceRole: db.current.serviceRole,
      });
    } finally {
      await admin.end();
    }
    const r = await adminQuery(
      db.current.adminUrl,
      `INSERT INTO sync_metadata.client_deployments
         (client_name, host_id, sqlite_path, schema_name, sync_enabled, status, sync_interval)
       VALUES ($1, $2::uuid, $3, $4, true, 'active', 3600) RETURNING deployment_id::text AS id`,
      [name, host, file, tenantSchemaName(name)],
    );
    return (r.rows[0] as { id: string }).id;
  }

  const claim = (name: string, group?: { id: string; limit: number }, cluster = CLUSTER) =>
    claimTenant(
      pool,
      { cluster, hostId: cluster === CLUSTER ? hostId : otherHostId },
      {
        clientName: name,
        syncType: 'incremental',
        triggeredBy: 'test',
        claimTtlSeconds: 60,
        group,
      },
    );

  const release = (names: string[]) =>
    adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments
          SET sync_claim_job_id = NULL, sync_claimed_by = NULL, sync_claim_expires_at = NULL, sync_claim_group = NULL,
              last_sync_status = 'success'
        WHERE client_name = ANY($1::text[])`,
      [names],
    );

  it('two claims racing for a group of one: one runs, the other is told the group is full', async () => {
    for (const n of ['c1', 'c2', 'c3', 'c4']) await tenant(n);
    await tenant('o1', otherHostId);
    const large = { id: 'large', limit: 1 };
    const outcomes = await Promise.allSettled([claim('c1', large), claim('c2', large)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(SyncGroupFullError);
    expect((lost[0]!.reason as SyncGroupFullError).running).toBe(1);
    expect((lost[0]!.reason as Error).message).toMatch(/large group already has 1 sync\(s\) running .*at most 1/);
    const loser = won[0] === outcomes[0] ? 'c2' : 'c1';
    // The refused claim left nothing behind: no sync_jobs row, no claim, status unchanged.
    const left = await adminQuery(
      db.current.adminUrl,
      `SELECT (SELECT count(*)::int FROM sync_metadata.sync_jobs WHERE client_name = $1) AS jobs,
              sync_claim_job_id, sync_claim_group, last_sync_status
         FROM sync_metadata.client_deployments WHERE client_name = $1`,
      [loser],
    );
    expect(left.rows[0]).toMatchObject({ jobs: 0, sync_claim_job_id: null, sync_claim_group: null });
    expect(left.rows[0].last_sync_status).not.toBe('running');

    // Another group, an ungrouped run, another cluster's group and a larger cap are not held up.
    await expect(claim('c3', { id: 'failing', limit: 1 })).resolves.toMatchObject({ tenant: { clientName: 'c3' } });
    await expect(claim('o1', large, OTHER)).resolves.toMatchObject({ tenant: { clientName: 'o1' } });
    await expect(claim(loser, { id: 'large', limit: 2 })).resolves.toMatchObject({ tenant: { clientName: loser } });
    await expect(claim('c4', { id: 'large', limit: 2 })).rejects.toBeInstanceOf(SyncGroupFullError);
    await release(['c1', 'c2', 'c3', 'o1']);
    await expect(claim('c4', large)).resolves.toMatchObject({ tenant: { clientName: 'c4' } });
    // A claim that lapsed (its worker died) no longer counts.
    await adminQuery(
      db.current.adminUrl,
      `UPDATE sync_metadata.client_deployments SET sync_claim_expires_at = now() - interval '1 second'
        WHERE client_name = 'c4'`,
    );
    await expect(claim('c1', large)).resolves.toMatchObject({ tenant: { clientName: 'c1' } });
    await release(['c1', 'c4']);
  });

  async function startWorkers(n: number): Promise<void> {
    for (let i = 0; i < n; i += 1) {
      const boss = createBoss({ connectionString: url.url, pooled: url.pooled, max: 3 });
      boss.on('error', () => undefined);
      await boss.start();
      bosses.push(boss);
      workers.push(
        await startSyncWorker({
          boss,
          pool,
          cluster: CLUSTER,
          hostId,
          workerId: `worker-${i + 1}@cap-host`,
          concurrency: 1,
          groups: { large: 1, failing: 1 },
          logger: silentLogger(),
          runTenantSync,
        }),
      );
    }
  }

  /** Jobs of the given tenants in the `large` group, inserted at once as a scheduler pass does. */
  async function sendLarge(names: { name: string; id: string }[]): Promise<void> {
    await bosses[0]!.insert(
      SYNC_QUEUE,
      names.map((t) => ({
        id: randomUUID(),
        data: {
          deployment_id: t.id,
          client_name: t.name,
          full_sync: true,
          triggered_by: 'scheduler',
          requested_at: new Date().toISOString(),
        },
        singletonKey: t.name,
        priority: clusterPriority(CLUSTER),
        group: { id: 'large', tier: 'large' },
      })),
    );
  }

  type JobRow = { key: string; state: string; retry_count: number; output: { deferred?: string } | null };
  const jobsOf = async (names: string[]) =>
    (
      await adminQuery(
        db.current.adminUrl,
        `SELECT singleton_key AS key, state, retry_count, output FROM ${PGBOSS_SCHEMA}.job
          WHERE name = $1 AND singleton_key = ANY($2::text[]) ORDER BY created_on`,
        [SYNC_QUEUE, names],
      )
    ).rows as JobRow[];

  it('a worker whose job finds its group full queues it again, and it runs once the group frees', async () => {
    await tenant('w1');
    const waiting = await tenant('w2');
    await startWorkers(1);
    // Another worker runs a large tenant that pg-boss let past: its claim holds the group.
    await claim('w1', { id: 'large', limit: 1 });
    await sendLarge([{ name: 'w2', id: waiting }]);
    await waitUntil(
      'the job deferred',
      async () => (await jobsOf(['w2'])).some((j) => j.state === 'completed' && j.output?.deferred),
      20_000,
    );
    const deferred = await jobsOf(['w2']);
    expect(deferred.find((j) => j.state === 'completed')?.output?.deferred).toMatch(/large group already has 1/);
    expect(deferred.some((j) => j.state === 'created' || j.state === 'active' || j.state === 'retry')).toBe(true);
    const runs = await adminQuery(
      db.current.adminUrl,
      `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE client_name = 'w2'`,
    );
    expect(runs.rows[0].n).toBe(0);

    await release(['w1']);
    await waitUntil(
      'w2 synced',
      async () =>
        (
          await adminQuery(
            db.current.adminUrl,
            `SELECT last_sync_status AS s FROM sync_metadata.client_deployments WHERE client_name = 'w2'`,
          )
        ).rows[0].s === 'success',
      30_000,
    );
    const all = await jobsOf(['w2']);
    expect(
      all.every((j) => j.retry_count === 0 && j.state === 'completed'),
      JSON.stringify(all),
    ).toBe(true);
    const full = await adminQuery(
      db.current.adminUrl,
      `SELECT sync_type FROM sync_metadata.sync_jobs WHERE client_name = 'w2'`,
    );
    // The job queued again kept what was asked for (a full sync).
    expect(full.rows.map((r) => r.sync_type)).toEqual(['full']);
  }, 60_000);

  it('two workers woken at once by two large jobs never run both', async () => {
    const big = [] as { name: string; id: string }[];
    for (const name of ['r1', 'r2']) big.push({ name, id: await tenant(name, hostId, 400) });
    await startWorkers(2 - workers.length);
    const rounds = 6;
    for (let round = 1; round <= rounds; round += 1) {
      await sendLarge(big);
      await waitUntil(
        `round ${round}: both ran`,
        async () =>
          (
            await adminQuery(
              db.current.adminUrl,
              `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs
                WHERE client_name = ANY($1::text[]) AND status = 'success'`,
              [big.map((b) => b.name)],
            )
          ).rows[0].n ===
          2 * round,
        60_000,
        100,
      );
    }
    const overlap = await adminQuery(
      db.current.adminUrl,
      `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs a JOIN sync_metadata.sync_jobs b
          ON a.job_id < b.job_id AND a.started_at < b.completed_at AND b.started_at < a.completed_at
        WHERE a.client_name = ANY($1::text[]) AND b.client_name = ANY($1::text[])`,
      [big.map((b) => b.name)],
    );
    const jobs = await jobsOf(big.map((b) => b.name));
    const deferrals = jobs.filter((j) => j.output?.deferred).length;
    expect(overlap.rows[0].n, `overlapping large runs (${deferrals} deferral(s))`).toBe(0);
    expect(
      jobs.every((j) => j.retry_count === 0),
      JSON.stringify(jobs),
    ).toBe(true);
  }, 240_000);
});
