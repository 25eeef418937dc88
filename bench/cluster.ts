/**
 * Cluster benchmark: scheduler pass with many tenants, manual trigger → job start latency, and sync throughput
 * with 1, 2 and 4 worker processes.
 *
 *   npx tsx bench/cluster.ts [--tenants 10000] [--samples 100] [--throughput-tenants 120] [--skip-throughput]
 *
 * Uses BENCH_DATABASE_URL / TEST_DATABASE_URL (superuser) or postgres://postgres@127.0.0.1:5432/postgres, creates
 * its own database and service role, and drops both at the end. Timings are medians; ratios compare with a
 * baseline measured in the same run.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  registerHost,
  LeaderElector,
  createBoss,
  enqueueSync,
  runSchedulerTick,
  SCHEDULER_BATCH_SIZE,
  startSyncWorker,
  type RunTenantSync,
} from '@owui-sync/engine/cluster';
import { createPool, silentLogger } from '@owui-sync/engine';
import { install, quoteIdent, SYNC_QUEUE } from '@owui-sync/schema';
import { runThroughputBench } from './cluster-throughput.ts';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '10000' },
    samples: { type: 'string', default: '100' },
    'throughput-tenants': { type: 'string', default: '120' },
    'skip-throughput': { type: 'boolean', default: false },
  },
});

const ADMIN =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CLUSTER = 'bench';
const logger = silentLogger();

function withDb(url: string, db: string, user?: { name: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
}

const median = (xs: number[]) => percentile(xs, 50);
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function admin(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const tenants = Number(args.tenants);
  const samples = Number(args.samples);
  const suffix = randomBytes(4).toString('hex');
  const dbName = `owui_bench_cluster_${suffix}`;
  const role = { name: `owui_bench_svc_${suffix}`, password: randomBytes(12).toString('hex') };
  await admin(ADMIN, `CREATE DATABASE ${quoteIdent(dbName)}`);
  const adminUrl = withDb(ADMIN, dbName);
  const serviceUrl = withDb(ADMIN, dbName, role);
  try {
    await install({ adminUrl, serviceRole: role.name, servicePassword: role.password });
    const report: string[] = [];
    const pool = createPool(serviceUrl, { max: 6 });
    const boss = createBoss({ connectionString: serviceUrl, max: 4 });
    await boss.start();
    const hostId = await registerHost(pool, { cluster: CLUSTER, hostname: 'bench', nodeName: 'node-a', role: 'node' });
    const elector = new LeaderElector({
      pool,
      cluster: CLUSTER,
      leaderId: 'node-a@bench',
      hostId,
      leaseSeconds: 60,
      renewSeconds: 30,
      logger,
    });
    await elector.start();
    if (!elector.isLeader()) throw new Error('benchmark node did not become leader');

    // --- Scheduler pass -----------------------------------------------------------------------------------
    await admin(
      adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status, sync_interval)
       SELECT 'b' || i, $1::uuid, 'client_b' || i, true, 'active', (ARRAY[60, 300, 3600, 86400])[1 + i % 4]
         FROM generate_series(1, $2::int) i`,
      [hostId, tenants],
    );
    await admin(adminUrl, 'ANALYZE sync_metadata.client_deployments');
    const tick = () => runSchedulerTick({ elector, boss, cluster: CLUSTER });
    const resetAll = async () => {
      await admin(adminUrl, `DELETE FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
      await admin(adminUrl, 'UPDATE sync_metadata.client_deployments SET next_sync_at = NULL');
    };
    const allDue: { total: number; maxPass: number; passes: number }[] = [];
    for (let i = 0; i < 5; i += 1) {
      await resetAll();
      let total = 0;
      let maxPass = 0;
      let passes = 0;
      let enqueued = 0;
      for (let more = true; more;) {
        const r = await tick();
        more = r.more;
        passes += 1;
        total += r.durationMs;
        maxPass = Math.max(maxPass, r.durationMs);
        enqueued += r.enqueued;
      }
      if (enqueued !== tenants) throw new Error(`expected ${tenants} jobs, got ${enqueued}`);
      allDue.push({ total, maxPass, passes });
    }
    const idle: number[] = [];
    for (let i = 0; i < 5; i += 1) idle.push((await tick()).durationMs);
    // Steady state: 5 s ticks over a mix of 60/300/3600/86400 s intervals → about tenants × 5 × Σ(1/I)/4 due.
    const steadyDue = Math.max(1, Math.round((tenants * 5 * (1 / 60 + 1 / 300 + 1 / 3600 + 1 / 86400)) / 4));
    const steady: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      await admin(adminUrl, `DELETE FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
      await admin(
        adminUrl,
        `UPDATE sync_metadata.client_deployments SET next_sync_at = now() - interval '1 second'
          WHERE deployment_id IN (SELECT deployment_id FROM sync_metadata.client_deployments ORDER BY random() LIMIT $1)`,
        [steadyDue],
      );
      steady.push((await tick()).durationMs);
    }
    const base = median(idle);
    report.push(`Scheduler pass, ${tenants} tenants (median of 5):`);
    report.push(`  nothing due (baseline)       ${fmt(base)}`);
    report.push(
      `  steady state (${steadyDue} due)      ${fmt(median(steady))}  (${(median(steady) / base).toFixed(1)}× baseline)`,
    );
    const backlogPass = median(allDue.map((a) => a.maxPass));
    report.push(
      `  all ${tenants} due at once      ${fmt(median(allDue.map((a) => a.total)))} in ${allDue[0]!.passes} passes ` +
        `of ≤ ${SCHEDULER_BATCH_SIZE}; longest pass ${fmt(backlogPass)} (${(backlogPass / base).toFixed(1)}× baseline)`,
    );
    await resetAll();

    // --- Trigger → job start -------------------------------------------------------------------------------
    for (const mode of ['notify', 'polling'] as const) {
      const workerBoss = createBoss({ connectionString: serviceUrl, pooled: mode === 'polling', max: 4 });
      await workerBoss.start();
      const started = new Map<string, number>();
      const stub: RunTenantSync = async (o) => {
        started.set(o.queueJobId ?? '', performance.now());
        return { jobId: randomUUID(), status: 'success', syncType: 'incremental', rowsSynced: 0, durationSeconds: 0 };
      };
      const worker = await startSyncWorker({
        boss: workerBoss,
        pool,
        runTenantSync: stub,
        cluster: CLUSTER,
        hostId,
        workerId: 'bench',
        concurrency: 2,
        logger,
      });
      await new Promise((r) => setTimeout(r, 1500));
      const latencies: number[] = [];
      const ids = new Map<string, string>(
        (
          await admin(adminUrl, 'SELECT client_name, deployment_id::text AS id FROM sync_metadata.client_deployments')
        ).rows.map((r: { client_name: string; id: string }) => [r.client_name, r.id]),
      );
      for (let i = 0; i < samples; i += 1) {
        const client = `b${1 + Math.floor(Math.random() * tenants)}`;
        const sentAt = performance.now();
        // As the API does: the cluster is looked up from the deployment.
        const res = await enqueueSync(boss, {
          deployment_id: ids.get(client)!,
          client_name: client,
          full_sync: false,
          triggered_by: 'bench',
        });
        if (!res.jobId || res.coalesced) continue;
        const deadline = performance.now() + 10_000;
        while (!started.has(res.jobId) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        const at = started.get(res.jobId);
        if (at !== undefined) latencies.push(at - sentAt);
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 200));
      }
      await worker.stop();
      await workerBoss.stop({ graceful: false });
      report.push(
        `Trigger → job start, ${mode === 'notify' ? 'LISTEN/NOTIFY (direct connection)' : 'polling every 0.5 s (as behind a pooler)'}, ${latencies.length} samples: ` +
          `p50 ${fmt(percentile(latencies, 50))}, p99 ${fmt(percentile(latencies, 99))}, max ${fmt(Math.max(...latencies))}`,
      );
    }
    await elector.stop();
    await boss.stop({ graceful: false });
    await pool.end();

    // --- Throughput with 1, 2, 4 worker processes ---------------------------------------------------------
    if (!args['skip-throughput']) {
      report.push(...(await runThroughputBench({ adminUrl, serviceUrl, tenants: Number(args['throughput-tenants']) })));
    }
    console.log(report.join('\n'));
  } finally {
    await admin(ADMIN, `DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).catch(() => undefined);
    await admin(ADMIN, `DROP ROLE IF EXISTS ${quoteIdent(role.name)}`).catch(() => undefined);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
