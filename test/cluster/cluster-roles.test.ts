import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  registerHost,
  LeaderElector,
  QueueUnavailableError,
  callerIdentity,
  createBoss,
  enqueueSync,
  queueCounts,
  queueProblem,
  queueSchemaOf,
  runSchedulerTick,
  startSyncWorker,
  type SyncRunOutcome,
  type SyncWorker,
} from '@owui-sync/engine/cluster';
import { ConfigError, NotFoundError, silentLogger } from '@owui-sync/engine';
import { provisionTenant, runTenantSync, tenantSchemaName } from '@owui-sync/engine/sync';
import { grantTenantSchema, quoteIdent, SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI, scratchDir } from '../engine/helpers.ts';
import { createClusterRole, type TestClusterRole } from '../support/cluster-roles.ts';
import { adminQuery, useTestDatabase, withConnection } from '../support/db.ts';
import { clusterUrl, type ClusterUrl } from '../support/pooler.ts';
import { waitUntil } from '../support/processes.ts';

/**
 * The cluster runtime as each cluster's own role (directly, or through pgbouncer in transaction mode): host
 * registration, the lease, the scheduler, pg-boss and its workers all work with nothing but that role's rights, each
 * cluster's jobs stay in its own queue schema, and a lost queue is reported as such.
 */

type Side = {
  readonly cluster: string;
  readonly role: TestClusterRole;
  readonly url: ClusterUrl;
  readonly pool: pg.Pool;
  readonly boss: PgBoss;
  readonly errors: unknown[];
  readonly ran: string[];
  readonly hostId: string;
  readonly tenant: { readonly name: string; readonly deploymentId: string };
  readonly elector: LeaderElector;
  worker?: SyncWorker;
};

describe('cluster runtime as per-cluster roles', () => {
  const db = useTestDatabase();
  const sides: Record<'a' | 'b', Side> = {} as never;
  const logLines: string[] = [];
  const scratch = scratchDir('owui-cluster-roles-');
  let failNext = false;

  beforeAll(async () => {
    const roles = {
      a: await createClusterRole(db.current, 'roles-a', 'ra'),
      b: await createClusterRole(db.current, 'roles-b', 'rb'),
    };
    // Every login pgbouncer must know, before any connection is opened.
    const urls = { a: await clusterUrl(roles.a.url), b: await clusterUrl(roles.b.url) };
    for (const key of ['a', 'b'] as const) {
      const cluster = `roles-${key}`;
      const url = urls[key];
      const pool = new pg.Pool({ connectionString: url.url, max: 4 });
      const identity = await callerIdentity(pool);
      const logger = pino(
        { level: 'warn' },
        { write: (line: string) => void logLines.push(`${key}: ${JSON.parse(line).msg as string}`) },
      );
      const boss = createBoss({
        connectionString: url.url,
        pooled: url.pooled,
        schema: queueSchemaOf(identity, cluster),
        max: 3,
        superviseIntervalSeconds: 1,
        queueCacheIntervalSeconds: 1,
        logger,
      });
      const errors: unknown[] = [];
      boss.on('error', (e) => errors.push(e));
      await boss.start();
      const hostId = await registerHost(pool, { cluster, hostname: 'roles-host', nodeName: 'node-a', role: 'node' });
      const name = `roles-tenant-${key}`;
      const dep = await adminQuery(
        db.current.adminUrl,
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sqlite_path, sync_enabled,
                                                       status, sync_interval)
         VALUES ($1, $2, $3, '/data/x.db', true, 'active', 3600) RETURNING deployment_id::text`,
        [name, hostId, `client_${name.replaceAll('-', '_')}`],
      );
      const elector = new LeaderElector({
        pool,
        cluster,
        leaderId: `node-a@roles-host`,
        hostId,
        leaseSeconds: 5,
        renewSeconds: 1,
        pollSeconds: 0.2,
        logger: silentLogger(),
      });
      sides[key] = {
        cluster,
        role: roles[key],
        url,
        pool,
        boss,
        errors,
        ran: [],
        hostId,
        tenant: { name, deploymentId: dep.rows[0].deployment_id },
        elector,
      };
    }
  });

  afterAll(async () => {
    for (const side of Object.values(sides)) {
      await side.worker?.stop({ timeoutMs: 1000 }).catch(() => undefined);
      await side.elector.stop().catch(() => undefined);
      await side.boss.stop({ graceful: false }).catch(() => undefined);
      await side.pool.end().catch(() => undefined);
    }
    scratch.cleanup();
  });

  it('refuses to start a process whose role belongs to another cluster, or to none (with what to do)', async () => {
    const identity = await callerIdentity(sides.a.pool);
    expect(identity).toMatchObject({ role: sides.a.role.role, cluster: 'roles-a', unrestricted: false });
    expect(() => queueSchemaOf(identity, 'roles-b')).toThrow(ConfigError);
    expect(() => queueSchemaOf(identity, 'roles-b')).toThrow(/of cluster "roles-a", but CLUSTER_NAME is "roles-b"/);
    expect(() => queueSchemaOf({ ...identity!, cluster: null, queueSchema: null }, 'roles-a')).toThrow(
      /belongs to no cluster.*syncctl cluster add-role --cluster roles-a/,
    );
  });

  it("elects, schedules and runs each cluster's tenants with its own role, in its own queue", async () => {
    for (const side of Object.values(sides)) {
      await side.elector.start();
      await waitUntil('the lease', () => side.elector.isLeader(), 10_000);
      side.worker = await startSyncWorker({
        boss: side.boss,
        pool: side.pool,
        cluster: side.cluster,
        hostId: side.hostId,
        workerId: `node-a@roles-host`,
        concurrency: 1,
        logger: silentLogger(),
        runTenantSync: async (opts): Promise<SyncRunOutcome> => {
          side.ran.push(opts.clientName);
          const fail = failNext;
          failNext = false;
          return {
            jobId: '00000000-0000-0000-0000-000000000000',
            status: fail ? 'failed' : 'success',
            syncType: 'incremental',
            rowsSynced: 0,
            durationSeconds: 0,
            ...(fail ? { error: 'simulated failure' } : {}),
          };
        },
      });
      const tick = await runSchedulerTick({ elector: side.elector, boss: side.boss, cluster: side.cluster });
      expect(tick.enqueued).toBe(1);
    }
    await waitUntil('both syncs', () => sides.a.ran.length > 0 && sides.b.ran.length > 0, 15_000);
    expect(sides.a.ran).toEqual(['roles-tenant-a']);
    expect(sides.b.ran).toEqual(['roles-tenant-b']);
    await waitUntil(
      'the job completed',
      async () => (await queueCounts(sides.a.boss)).find((c) => c.queue === SYNC_QUEUE)?.states.completed === 1,
      10_000,
    );
    // Each schema holds its own cluster's job and nothing else.
    for (const side of Object.values(sides)) {
      const jobs = await adminQuery(
        db.current.adminUrl,
        `SELECT data->>'client_name' AS client FROM ${quoteIdent(side.role.queueSchema)}.job`,
      );
      expect(jobs.rows.map((r) => r.client)).toEqual([side.tenant.name]);
    }
  });

  it("retries a failed run and supervises the queue with the role's rights alone; cannot enqueue across", async () => {
    failNext = true;
    const before = sides.a.ran.length;
    await enqueueSync(sides.a.boss, {
      deployment_id: sides.a.tenant.deploymentId,
      client_name: sides.a.tenant.name,
      full_sync: false,
      triggered_by: 'api',
    });
    await waitUntil(
      'the failed run to be retried',
      async () =>
        sides.a.ran.length > before &&
        (await queueCounts(sides.a.boss)).find((c) => c.queue === SYNC_QUEUE)?.states.retry === 1,
      15_000,
    );
    await sides.a.boss.supervise();
    await expect(
      enqueueSync(sides.a.boss, {
        deployment_id: sides.b.tenant.deploymentId,
        client_name: sides.b.tenant.name,
        full_sync: false,
        triggered_by: 'api',
      }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(sides.a.errors).toEqual([]);
    expect(sides.b.errors).toEqual([]);
  });

  it("syncs a real tenant as its cluster's role, which the other cluster's role cannot read", async () => {
    const name = 'roles-real-a';
    const file = scratch.file(`${name}.db`);
    makeMiniOpenWebUI(file, { chats: 30 });
    const adminPool = new pg.Pool({ connectionString: db.current.adminUrl, max: 2 });
    try {
      await provisionTenant({ adminPool, clientName: name, sqlitePath: file, serviceRole: db.current.serviceRole });
      await withConnection(db.current.adminUrl, (c) => grantTenantSchema(c, tenantSchemaName(name), 'roles-a'));
      await adminPool.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled,
                                                       status)
         VALUES ($1, $2, $3, $4, false, 'registered')`,
        [name, sides.a.hostId, file, tenantSchemaName(name)],
      );
    } finally {
      await adminPool.end();
    }
    const result = await runTenantSync({
      pool: sides.a.pool,
      clientName: name,
      scope: { hostId: sides.a.hostId, cluster: 'roles-a' },
      fullSync: true,
      triggeredBy: 'test',
    });
    expect(result.status).toBe('success');
    const chats = await sides.a.pool.query(`SELECT count(*)::int AS n FROM ${quoteIdent(tenantSchemaName(name))}.chat`);
    expect(chats.rows[0].n).toBe(30);
    await expect(
      sides.b.pool.query(`SELECT count(*) FROM ${quoteIdent(tenantSchemaName(name))}.chat`),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      runTenantSync({
        pool: sides.b.pool,
        clientName: name,
        scope: { hostId: sides.a.hostId, cluster: 'roles-a' },
        triggeredBy: 'test',
      }),
    ).rejects.toThrow();
  });

  it('a deleted queue is reported readably, once per interval, and answers as unavailable; the other cluster runs on', async () => {
    const schema = quoteIdent(sides.a.role.queueSchema);
    await adminQuery(
      db.current.adminUrl,
      `DELETE FROM ${schema}.job WHERE name = 'owui-sync'; SELECT ${schema}.delete_queue('owui-sync')`,
    );
    expect(await queueProblem(sides.a.boss)).toMatch(
      /queue owui-sync does not exist in schema pgboss_roles_a; run syncctl cluster add-role --cluster CLUSTER/,
    );
    await expect(
      enqueueSync(sides.a.boss, {
        deployment_id: sides.a.tenant.deploymentId,
        client_name: sides.a.tenant.name,
        full_sync: false,
        triggered_by: 'api',
      }),
    ).rejects.toBeInstanceOf(QueueUnavailableError);
    // The workers' fetches fail on every poll; the log says why, readably and not on every poll.
    await waitUntil(
      'the worker to report the queue',
      () => logLines.some((l) => l.startsWith('a: job queue:')),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 2500));
    const reports = logLines.filter((l) => l.startsWith('a: job queue:'));
    expect(reports.join('\n')).not.toContain('[object Object]');
    expect(reports[0]).toMatch(/Queue owui-sync does not exist/);
    // Polling every 0.5 s for 2.5 s: one report per 1 s supervise interval, not one per poll.
    expect(reports.length).toBeLessThanOrEqual(4);
    expect(await queueProblem(sides.b.boss)).toBeNull();

    // Re-applying the role (as syncctl cluster add-role does) recreates the queue.
    await createClusterRole(db.current, 'roles-a', 'ra2');
    expect(await queueProblem(sides.a.boss, 0)).toBeNull();
  }, 60_000);
});
