// Stays whole (over 400 lines): one benchmark run (start the cluster, warm up, drive the writer, sample, report) whose phases share its measurements.
/**
 * Steady-state capacity benchmark: N small tenants (copies of one generated Open WebUI database), a few big ones
 * and one that always fails, kept current by the real cluster (node-a, node-b and extra worker processes) while a
 * writer changes a share of the tenants every interval. After a warm-up (every tenant's first, full sync) it runs
 * for a fixed time and prints runs/s, lag, per-process CPU and RSS, PostgreSQL backend memory, catalog and
 * sync_metadata sizes and the series count of /metrics.
 *
 *   npx tsx bench/capacity.ts [--tenants 2000] [--interval 300] [--seconds 600] [--change-share 0.05]
 *     [--workers 2] [--concurrency 2] [--big 2] [--big-chats 3000] [--big-changes 1000] [--failing 1]
 *     [--large-mb 10] [--provision-batch 1] [--provision-concurrency 8] [--reuse] [--provision-only]
 *     [--drop-reused] [--connection-lifetime 300] [--probe-tenants 400]
 *
 * Uses BENCH_DATABASE_URL / TEST_DATABASE_URL (superuser) or postgres://postgres@127.0.0.1:5432/postgres, creates
 * its own database and service role, and drops both at the end, also when interrupted (SIGINT/SIGTERM); a run
 * killed outright leaves them for the next run to sweep. With `--reuse` the provisioned and warmed-up fleet is kept
 * (database, role and files named after its shape) and the next `--reuse` run of the same shape starts from it;
 * `--drop-reused` removes it.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { createPool } from '@owui-sync/engine';
import { verifyTenant } from '@owui-sync/engine/restore';
import { tenantSchemaName } from '@owui-sync/engine/sync';
import { generateOpenWebUIDatabase } from '@owui-sync/fixtures';
import { install, quoteIdent, SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import {
  admin,
  fleetPlace,
  fleetTenants,
  markKept,
  provisionFleet,
  relcacheProbe,
  sweepStale,
  warmByCopy,
  withDb,
  type Tenant,
} from './capacity-fleet.ts';
import {
  cpuTicks,
  machineTicks,
  mb,
  memory,
  percentile,
  sizeOf,
  startProcess,
  stopProcesses,
  type Proc,
} from './capacity-measure.ts';

const { values: args } = parseArgs({
  options: {
    tenants: { type: 'string', default: '2000' },
    interval: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '600' },
    'change-share': { type: 'string', default: '0.05' },
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '2' },
    big: { type: 'string', default: '2' },
    'big-chats': { type: 'string', default: '3000' },
    'big-changes': { type: 'string', default: '1000' },
    failing: { type: 'string', default: '1' },
    'large-mb': { type: 'string', default: '10' },
    'provision-batch': { type: 'string', default: '1' },
    'provision-concurrency': { type: 'string', default: '8' },
    'warmup-timeout': { type: 'string', default: '2400' },
    warm: { type: 'string', default: 'sync' },
    help: { type: 'boolean', default: false },
    reuse: { type: 'boolean', default: false },
    'provision-only': { type: 'boolean', default: false },
    'drop-reused': { type: 'boolean', default: false },
    'probe-tenants': { type: 'string', default: '400' },
    'connection-lifetime': { type: 'string', default: '300' },
  },
});

const ADMIN =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CLUSTER = 'bench';
const HOST = 'bench';
const CLK_TCK = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const USAGE = `npm run bench:capacity -- [options]   steady-state capacity of a whole cluster (docs/benchmarks.md)

  --tenants N              tenants in the fleet (2000)            --interval S        sync interval, seconds (300)
  --seconds S              length of the steady phase (600)       --change-share F    tenants changed per interval (0.05)
  --workers N              worker processes besides the 2 nodes (2) --concurrency N   slots per process (2)
  --big N / --big-chats N  big tenants and their chats (2 / 3000) --big-changes N     chats a big tenant edits per interval (1000)
  --failing N              tenants whose file is missing (1)      --large-mb N        LARGE_TENANT_MB for the run (10)
  --connection-lifetime S  DB_CONNECTION_LIFETIME (300)           --probe-tenants N   tenants of the relation-cache probe (400)
  --provision-batch N      tenants per provisioning transaction (1) --provision-concurrency N  transactions at once (8)
  --reuse                  keep the provisioned, warmed-up fleet and start from it next time (same shape)
  --provision-only         provision (and keep, with --reuse), warm by copy with --warm copy, then stop
  --drop-reused            remove the kept fleet of this shape
  --warmup-timeout S       give up when the first syncs take longer (2400)
  --warm sync|copy         warm-up: every tenant's first full sync by the cluster (sync), or one small tenant synced
                           and copied, files and sync state, to the other small ones (copy; for 10 000 tenants)`;

async function main(): Promise<void> {
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const tenants = Number(args.tenants);
  const interval = Number(args.interval);
  const seconds = Number(args.seconds);
  const changeShare = Number(args['change-share']);
  const workers = Number(args.workers);
  const concurrency = Number(args.concurrency);
  const bigCount = Number(args.big);
  const failingCount = Number(args.failing);
  if (args.warm !== 'sync' && args.warm !== 'copy') throw new Error(`--warm must be sync or copy, not ${args.warm}`);
  for (const gone of await sweepStale(ADMIN)) console.error(`  removed leftover of an interrupted run: ${gone}`);
  const place = fleetPlace({ tenants, big: bigCount, failing: failingCount, reuse: args.reuse });
  const { dbName, role, dir } = place;
  if (args['drop-reused']) {
    await admin(ADMIN, `DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
    await admin(ADMIN, `DROP ROLE IF EXISTS ${quoteIdent(role.name)}`);
    rmSync(dir, { recursive: true, force: true });
    console.log(`dropped the kept fleet ${dbName}`);
    return;
  }
  const adminUrl = withDb(ADMIN, dbName);
  const serviceUrl = withDb(ADMIN, dbName, role);
  const procs: Proc[] = [];
  const report: string[] = [];
  const out = (line: string) => {
    report.push(line);
    console.log(line);
  };
  let cleaned: Promise<void> | undefined;
  // Stops the processes and, unless the fleet is kept, drops the database and role and removes the files.
  const cleanup = () =>
    (cleaned ??= (async () => {
      stopping = true;
      await stopProcesses(procs);
      if (place.reuse) return;
      await admin(ADMIN, `DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`).catch(() => undefined);
      await admin(ADMIN, `DROP ROLE IF EXISTS ${quoteIdent(role.name)}`).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(
        `${signal}: stopping the processes${place.reuse ? '' : " and removing the benchmark's database and files"}`,
      );
      void cleanup().finally(() => process.exit(130));
    });
  }
  const all: Tenant[] = fleetTenants(dir, tenants, bigCount, failingCount);
  const small = path.join(dir, 'template-small.db');
  const big = path.join(dir, 'template-big.db');
  try {
    let fixtureSeconds = 0;
    let provisioning = 'reused the kept fleet';
    let t0 = performance.now();
    if (!place.provisioned) {
      await admin(ADMIN, `DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
      await admin(ADMIN, `DROP ROLE IF EXISTS ${quoteIdent(role.name)}`);
      await admin(ADMIN, `CREATE DATABASE ${quoteIdent(dbName)}`);
      await install({ adminUrl, serviceRole: role.name, servicePassword: role.password });
    }
    const adminPool = createPool(adminUrl, { max: Number(args['provision-concurrency']) + 2 });

    // --- Fixtures --------------------------------------------------------------------------------------------
    if (!place.provisioned) {
      generateOpenWebUIDatabase({
        path: small,
        era: '0.11.0',
        scale: {
          users: 4,
          chats: 20,
          chatBodyBytes: 2000,
          chatMessagesPerChat: 3,
          channelMessages: 30,
          rowsPerTable: 3,
        },
        seed: 7,
        journalMode: 'wal',
      });
      if (bigCount > 0) {
        const bigChats = Number(args['big-chats']);
        generateOpenWebUIDatabase({
          path: big,
          era: '0.11.0',
          scale: {
            users: 50,
            chats: bigChats,
            chatBodyBytes: 8192,
            chatMessagesPerChat: 2,
            channels: 10,
            channelMessages: bigChats * 10,
            tags: 500,
            files: 200,
            rowsPerTable: 50,
          },
          seed: 8,
          journalMode: 'wal',
        });
      }
      fixtureSeconds = (performance.now() - t0) / 1000;

      // --- Provisioning ----------------------------------------------------------------------------------------
      const figures = await provisionFleet({
        adminUrl,
        adminPool,
        serviceRole: role.name,
        tenants: all,
        templates: { small, big, failing: small },
        cluster: CLUSTER,
        host: HOST,
        interval,
        batch: Number(args['provision-batch']),
        concurrency: Number(args['provision-concurrency']),
        progress: (done) => {
          if (done % 1000 < Number(args['provision-batch'])) {
            console.error(`  provisioned ${done}/${tenants} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
          }
        },
      });
      provisioning =
        `provisioning ${figures.seconds.toFixed(1)} s (${((figures.seconds / tenants) * 1000).toFixed(1)} ms/tenant, ` +
        `${figures.batches} batches of ${args['provision-batch']}, ${args['provision-concurrency']} at a time)`;
      // The failing tenants' files disappear: every run fails ("file not found") and is retried.
      for (const t of all.filter((x) => x.kind === 'failing')) {
        for (const f of [t.file, `${t.file}-wal`, `${t.file}-shm`]) rmSync(f, { force: true });
      }
      await adminPool.query('ANALYZE');
      if (place.reuse) markKept(place, 'provisioned');
    } else {
      // The kept fleet runs at this run's interval; slots are recomputed from each tenant's last sync.
      await adminPool.query('UPDATE sync_metadata.client_deployments SET sync_interval = $1, next_sync_at = NULL', [
        interval,
      ]);
    }
    const smallBytes = sizeOf(small);
    const bigBytes = bigCount > 0 ? sizeOf(big) : 0;
    // --- Warm-up by copy (before the cluster starts, so no run claims a tenant being copied) ----------------------
    let copyWarm = '';
    if (args.warm === 'copy' && !place.kept) {
      const servicePool = createPool(serviceUrl, { max: 2 });
      try {
        const hostId = (
          await adminPool.query<{ id: string }>("SELECT sync_metadata.host_identity($1, $2, 'node-a') AS id", [
            CLUSTER,
            HOST,
          ])
        ).rows[0]!.id;
        const smallTenants = all.filter((t) => t.kind === 'small');
        t0 = performance.now();
        const w = await warmByCopy({
          adminPool,
          servicePool,
          hostId,
          template: smallTenants[0]!,
          tenants: smallTenants,
          interval,
          batch: 25,
          concurrency: Number(args['provision-concurrency']),
          progress: (done) => {
            if (done % 1000 < 25) {
              console.error(`  copied ${done} tenants (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
            }
          },
        });
        copyWarm =
          `warm-up by copy: ${w.template} synced for real in ${w.templateSeconds.toFixed(1)} s, ${w.tenants} small ` +
          `tenants copied from it in ${(w.seconds - w.templateSeconds).toFixed(1)} s ` +
          `(${w.tenants ? (((w.seconds - w.templateSeconds) / w.tenants) * 1000).toFixed(1) : '0'} ms/tenant); `;
      } finally {
        await servicePool.end();
      }
    }

    if (args['provision-only']) {
      const r = await adminPool.query<{ relations: number }>('SELECT count(*)::int AS relations FROM pg_class');
      out(
        `${tenants} tenants: fixtures ${fixtureSeconds.toFixed(1)} s; ${provisioning}; ${copyWarm}${r.rows[0]!.relations} relations`,
      );
      await adminPool.end();
      return;
    }

    // --- Processes ---------------------------------------------------------------------------------------------
    const base = {
      DATABASE_URL: serviceUrl,
      DATABASE_POOLER: 'none',
      CLUSTER_NAME: CLUSTER,
      HOST_NAME: HOST,
      LOG_LEVEL: 'warn',
      WORKER_CONCURRENCY: String(concurrency),
      LEASE_DURATION: '30',
      HEARTBEAT_INTERVAL: '10',
      SCHEDULER_INTERVAL: '5',
      LARGE_TENANT_MB: String(args['large-mb']),
      DB_CONNECTION_LIFETIME: String(args['connection-lifetime']),
    };
    const portBase = 19_000 + Math.floor(Math.random() * 1000);
    procs.push(startProcess('node-a', 'node', { ...base, ROLE: 'node-a', API_PORT: String(portBase) }, portBase));
    procs.push(
      startProcess('node-b', 'node', { ...base, ROLE: 'node-b', API_PORT: String(portBase + 1) }, portBase + 1),
    );
    for (let i = 1; i <= workers; i += 1)
      procs.push(startProcess(`worker-${i}`, 'worker', { ...base, ROLE: `worker-${i}` }, null));
    for (const p of procs) {
      p.child.once('exit', (code) => {
        if (!stopping) console.error(`${p.name} exited (${code}):\n${p.log.slice(-20).join('\n')}`);
      });
    }

    // --- Warm-up: every tenant's first (full) sync -------------------------------------------------------------
    t0 = performance.now();
    const healthy = all.filter((t) => t.kind !== 'failing').map((t) => t.name);
    for (;;) {
      const r = await adminPool.query<{ n: number }>(
        // Synced once at least: a tenant whose next run is under way shows 'running' meanwhile.
        `SELECT count(*)::int AS n FROM sync_metadata.client_deployments d
          WHERE d.client_name = ANY($1::text[])
            AND EXISTS (SELECT 1 FROM sync_metadata.sync_jobs j
                         WHERE j.deployment_id = d.deployment_id AND j.status IN ('success', 'conflict'))`,
        [healthy],
      );
      if (r.rows[0]!.n >= healthy.length) break;
      if (performance.now() - t0 > Number(args['warmup-timeout']) * 1000) {
        throw new Error(`warm-up: only ${r.rows[0]!.n}/${healthy.length} tenants synced`);
      }
      await sleep(2000);
    }
    const warmupSeconds = (performance.now() - t0) / 1000;
    if (place.reuse && !place.kept) markKept(place, 'ready');

    // --- Steady phase ------------------------------------------------------------------------------------------
    const lastSuccess = new Map<string, number>();
    const sampleLag = async () => {
      const r = await adminPool.query<{ client_name: string; at: number; status: string }>(
        `SELECT client_name, extract(epoch FROM last_sync_at)::float8 AS at, last_sync_status AS status
           FROM sync_metadata.client_deployments`,
      );
      for (const row of r.rows)
        if (row.status === 'success' || row.status === 'conflict') lastSuccess.set(row.client_name, row.at);
    };
    await sampleLag();
    const pids = () => procs.map((p) => ({ name: p.name, pid: p.child.pid ?? -1 }));
    const cpuStart = new Map(pids().map((p) => [p.name, cpuTicks(p.pid) ?? 0]));
    const machineStart = machineTicks();
    const benchCpuStart = process.cpuUsage();
    /** CPU ticks of every postgres process, by pid. */
    const postgresTicks = () => {
      const ticks = new Map<number, number>();
      for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
        try {
          if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
        } catch {
          continue;
        }
        ticks.set(Number(pid), cpuTicks(Number(pid)) ?? 0);
      }
      return ticks;
    };
    const pgCpuStart = postgresTicks();
    const countRuns = async () =>
      (
        await adminPool.query<{ completed: number }>(
          `SELECT count(*) FILTER (WHERE state = 'completed')::int AS completed FROM pgboss.job WHERE name = $1`,
          [SYNC_QUEUE],
        )
      ).rows[0]!;
    const runsStart = await countRuns();
    const phaseStartedAt = new Date();
    const maxRss = new Map<string, number>();
    let maxPgRss = 0;
    let maxPgPss = 0;
    let pgBackends = 0;
    const pgMemory = async () => {
      const r = await adminPool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        [dbName],
      );
      let rss = 0;
      let pss = 0;
      for (const { pid } of r.rows) {
        const m = memory(pid);
        rss += m.rss;
        pss += m.pss;
      }
      return { rss, pss, n: r.rows.length };
    };
    const steadyStart = performance.now();
    const wallStart = Date.now() / 1000;
    let writes = 0;
    const lastWrite = new Map<string, number>();
    const small_ = all.filter((t) => t.kind !== 'failing');
    const perSecond = (small_.length * changeShare) / interval;
    let owed = 0;
    let lastSample = 0;
    let lastBigChange = -Infinity;
    while (performance.now() - steadyStart < seconds * 1000) {
      const tick = performance.now();
      if (tick - lastBigChange >= interval * 1000) {
        // Once an interval every big tenant edits many chats: its next run has megabytes to copy.
        lastBigChange = tick;
        for (const t of all.filter((x) => x.kind === 'big')) {
          const db = new Database(t.file);
          try {
            db.prepare(
              `UPDATE chat SET updated_at = ? WHERE id IN (SELECT id FROM chat ORDER BY random() LIMIT ?)`,
            ).run(Math.floor(Date.now() / 1000), Number(args['big-changes']));
          } finally {
            db.close();
          }
        }
      }
      owed += perSecond;
      while (owed >= 1) {
        owed -= 1;
        const t = small_[Math.floor(Math.random() * small_.length)]!;
        const db = new Database(t.file);
        try {
          const now = Math.floor(Date.now() / 1000);
          db.prepare(`UPDATE "user" SET last_active_at = ? WHERE id = (SELECT id FROM "user" LIMIT 1)`).run(now);
          db.prepare(
            `UPDATE chat SET title = ?, updated_at = ? WHERE id = (SELECT id FROM chat ORDER BY random() LIMIT 1)`,
          ).run(`renamed ${now}`, now);
        } finally {
          db.close();
        }
        writes += 1;
        lastWrite.set(t.name, Date.now() / 1000);
      }
      if (tick - lastSample > 5000) {
        lastSample = tick;
        for (const p of pids()) maxRss.set(p.name, Math.max(maxRss.get(p.name) ?? 0, memory(p.pid).rss));
        const m = await pgMemory();
        maxPgRss = Math.max(maxPgRss, m.rss);
        maxPgPss = Math.max(maxPgPss, m.pss);
        pgBackends = Math.max(pgBackends, m.n);
        await sampleLag();
      }
      await sleep(Math.max(0, 1000 - (performance.now() - tick)));
    }
    const elapsed = (performance.now() - steadyStart) / 1000;
    await sampleLag();
    const runsEnd = await countRuns();
    const machineEnd = machineTicks();
    // Processes alive at the end: their CPU since the start (all of it for those started meanwhile); backends that
    // exited during the phase are not counted.
    const pgCpuEnd = [...postgresTicks()].reduce((a, [pid, t]) => a + t - (pgCpuStart.get(pid) ?? 0), 0);
    const benchCpu = process.cpuUsage(benchCpuStart);
    const failingJobs = (
      await adminPool.query<{ status: string; n: number }>(
        `SELECT status, count(*)::int AS n FROM sync_metadata.sync_jobs
          WHERE client_name LIKE 'failing%' AND started_at >= $1 GROUP BY status`,
        [phaseStartedAt],
      )
    ).rows;
    // Every attempt that failed during the phase is a failed sync_jobs row; pg-boss keeps a retried job in one row
    // (its retry_count grows), so its state counts would miss them.
    const attempts = (
      await adminPool.query<{ failed: number; healthy_failed: number; retried: number; dead: number }>(
        `SELECT (SELECT count(*)::int FROM sync_metadata.sync_jobs WHERE status = 'failed' AND started_at >= $1) AS failed,
                (SELECT count(*)::int FROM sync_metadata.sync_jobs
                  WHERE status = 'failed' AND started_at >= $1 AND client_name NOT LIKE 'failing%') AS healthy_failed,
                (SELECT coalesce(sum(retry_count), 0)::int FROM pgboss.job
                  WHERE name = $2 AND started_on >= $1) AS retried,
                (SELECT count(*)::int FROM pgboss.job WHERE name = $3 AND created_on >= $1) AS dead`,
        [phaseStartedAt, SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE],
      )
    ).rows[0]!;
    const cpuEnd = new Map(pids().map((p) => [p.name, cpuTicks(p.pid) ?? 0]));
    const pgMem = await pgMemory();
    const wallEnd = Date.now() / 1000;

    // --- Figures -----------------------------------------------------------------------------------------------
    const lagOf = (name: string) => wallEnd - (lastSuccess.get(name) ?? wallStart - interval * 100);
    const lags = healthy.map((n) => ({ name: n, lag: lagOf(n) }));
    const smallLags = lags.filter((l) => !l.name.startsWith('big')).map((l) => l.lag);
    const slowest = lags.reduce((a, b) => (b.lag > a.lag ? b : a));
    const runs = runsEnd.completed - runsStart.completed;
    const sizes = (
      await adminPool.query<{ catalog: string; meta: string; boss: string; db: string; relations: number }>(
        `SELECT (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r')::text AS catalog,
                (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'sync_metadata' AND c.relkind = 'r')::text AS meta,
                (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'pgboss' AND c.relkind IN ('r', 'p'))::text AS boss,
                pg_database_size(current_database())::text AS db,
                (SELECT count(*)::int FROM pg_class) AS relations`,
      )
    ).rows[0]!;
    const jobRows = (
      await adminPool.query<{ jobs: number; boss: number }>(
        `SELECT (SELECT count(*)::int FROM sync_metadata.sync_jobs) AS jobs, (SELECT count(*)::int FROM pgboss.job) AS boss`,
      )
    ).rows[0]!;
    let series = NaN;
    const port = procs[0]!.port;
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    } catch {
      // reported as NaN
    }
    const bigLags = lags.filter((l) => l.name.startsWith('big')).map((l) => l.lag);
    const machine = (machineEnd.busy - machineStart.busy) / (machineEnd.total - machineStart.total);

    out(`Capacity, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`);
    out(
      `  tenants ${tenants} (${tenants - bigCount - failingCount} small of ${mb(smallBytes)}, ${bigCount} big of ${mb(bigBytes)}, ` +
        `${failingCount} failing), interval ${interval} s, ${changeShare * 100}% changed per interval, ` +
        `${workers} workers + 2 nodes × ${concurrency} slots`,
    );
    out(`  fixtures ${fixtureSeconds.toFixed(1)} s; ${provisioning}`);
    out(`  ${copyWarm}warm-up (first full sync of every tenant not copied) ${warmupSeconds.toFixed(1)} s`);
    out(
      `  steady phase ${elapsed.toFixed(0)} s: ${writes} writer changes, ${runs} runs completed = ${(runs / elapsed).toFixed(1)} runs/s ` +
        `(needed ${(tenants / interval).toFixed(1)}), ${attempts.failed} failed attempts ` +
        `(${attempts.healthy_failed} of healthy tenants), ${attempts.retried} queue retries, ${attempts.dead} dead-lettered`,
    );
    out(
      `  lag (since last successful run), small tenants: p50 ${percentile(smallLags, 50).toFixed(1)} s, ` +
        `p99 ${percentile(smallLags, 99).toFixed(1)} s, max ${Math.max(...smallLags).toFixed(1)} s ` +
        `(goal p99 ≤ ${2 * interval} s: ${percentile(smallLags, 99) <= 2 * interval ? 'met' : 'NOT met'})`,
    );
    if (bigLags.length) out(`  lag, big tenants: max ${Math.max(...bigLags).toFixed(1)} s`);
    out(
      `  slowest tenant ${slowest.name}: lag ${slowest.lag.toFixed(1)} s; tenants over 2 intervals: ${lags.filter((l) => l.lag > 2 * interval).length}`,
    );
    out(`  machine CPU busy ${(machine * 100).toFixed(0)}% of ${os.cpus().length} cores`);
    for (const p of pids()) {
      const cpu = ((cpuEnd.get(p.name) ?? 0) - (cpuStart.get(p.name) ?? 0)) / CLK_TCK / elapsed;
      out(
        `  ${p.name.padEnd(9)} CPU ${(cpu * 100).toFixed(0).padStart(3)}% of a core, RSS ${mb(memory(p.pid).rss)} (max ${mb(maxRss.get(p.name) ?? 0)})`,
      );
    }
    out(
      `  postgres  CPU ${((pgCpuEnd / CLK_TCK / elapsed) * 100).toFixed(0).padStart(3)}% of a core ` +
        `(processes alive at start and end); benchmark driver and writer ` +
        `${(((benchCpu.user + benchCpu.system) / 1e6 / elapsed) * 100).toFixed(0)}%`,
    );
    const clusterTicks =
      pids().reduce((a, p) => a + (cpuEnd.get(p.name) ?? 0) - (cpuStart.get(p.name) ?? 0), 0) + pgCpuEnd;
    out(
      `  CPU per completed run (nodes, workers and postgres together): ${((clusterTicks / CLK_TCK / Math.max(1, runs)) * 1000).toFixed(1)} ms`,
    );
    out(`  failing tenants' sync_jobs rows: ${failingJobs.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}`);
    out(
      `  PostgreSQL client backends of the benchmark database: ${pgMem.n} (max ${pgBackends}), RSS ${mb(pgMem.rss)} ` +
        `(max ${mb(maxPgRss)}), PSS ${mb(pgMem.pss)} (max ${mb(maxPgPss)})`,
    );
    out(
      `  catalog ${mb(Number(sizes.catalog))} (${sizes.relations} relations), sync_metadata ${mb(Number(sizes.meta))} ` +
        `(${jobRows.jobs} sync_jobs rows), pgboss ${mb(Number(sizes.boss))} (${jobRows.boss} job rows), database ${mb(Number(sizes.db))}`,
    );
    out(`  /metrics series (node-a): ${series}`);
    const kinds = (
      await adminPool.query<{ skipped: number; full: number; n: number }>(
        `SELECT count(*) FILTER (WHERE details ? 'skipped')::int AS skipped,
                count(*) FILTER (WHERE sync_type = 'full')::int AS full, count(*)::int AS n
           FROM sync_metadata.sync_jobs WHERE started_at >= $1 AND status IN ('success', 'conflict')`,
        [phaseStartedAt],
      )
    ).rows[0]!;
    out(
      `  successful runs of the phase: ${kinds.n}, ${kinds.skipped} found the file unchanged, ${kinds.full} full syncs`,
    );
    if (copyWarm) {
      // The copies are exact: tenants the writer changed, synced since their last change, match their backup.
      const since = (
        await adminPool.query<{ client_name: string; at: number }>(
          `SELECT client_name, extract(epoch FROM last_sync_at)::float8 AS at FROM sync_metadata.client_deployments
            WHERE client_name = ANY($1::text[]) AND last_sync_status IN ('success', 'conflict')`,
          [[...lastWrite.keys()]],
        )
      ).rows.filter((r) => r.at > (lastWrite.get(r.client_name) ?? Infinity));
      let match = 0;
      const checked = since.slice(0, 10);
      for (const r of checked) {
        const v = await verifyTenant({ pool: adminPool, clientName: r.client_name });
        if (v.match) match += 1;
        else console.error(`  verify ${r.client_name}: ${JSON.stringify(v.totals)}`);
      }
      out(`  copied tenants changed by the writer and synced since: ${checked.length} verified, ${match} match`);
    }
    const probeCount = Math.min(Number(args['probe-tenants']), healthy.length);
    if (probeCount > 0) {
      const probe = await relcacheProbe(
        serviceUrl,
        healthy.slice(0, probeCount).map((n) => tenantSchemaName(n)),
      );
      const perTenant = (probe.endBytes - probe.startBytes) / probe.tenants;
      out(
        `  one backend touching ${probe.tenants} tenants' tables: private memory ${mb(probe.startBytes)} → ` +
          `${mb(probe.endBytes)}, ${(perTenant / 1024).toFixed(0)} KB per tenant ` +
          `(× ${tenants} tenants = ${mb(perTenant * tenants)} per backend that touches them all)`,
      );
    }
    await adminPool.end();
  } finally {
    await cleanup();
  }
}

let stopping = false;

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
