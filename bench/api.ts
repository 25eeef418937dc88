/**
 * API benchmark: wrk on loopback against a real API server (service-role pool of 10, bearer token, real database
 * with 50 tenants and 5,000 sync jobs). Measures GET /health (lease read) and GET /api/v1/sync/jobs
 * (default page of 20; also 100 for information) against a baseline served by the same server without the
 * database (GET /docs, static HTML). Each endpoint is
 * measured --rounds times (interleaved); figures are medians of the runs. Requires wrk (apt-get install -y wrk).
 *
 *   npx tsx bench/api.ts [--duration 5] [--connections 16] [--threads 2] [--rounds 3]
 *
 * Uses BENCH_DATABASE_URL / TEST_DATABASE_URL (superuser) or postgres://postgres@127.0.0.1:5432/postgres, creates
 * its own database and service role, and drops both at the end.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { startApiServer } from '@owui-sync/api';
import { registerHost, createBoss } from '@owui-sync/engine/cluster';
import { createPool, silentLogger, createMetrics } from '@owui-sync/engine';
import { install, quoteIdent } from '@owui-sync/schema';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
  },
});

const ADMIN =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CLUSTER = 'bench-api';
const TOKEN = randomBytes(16).toString('hex');
const run = promisify(execFile);

function withDb(url: string, db: string, user?: { name: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
}

async function admin(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

type WrkResult = { rps: number; p50: number; p90: number; p99: number; errors: number; requests: number };

/** Milliseconds from wrk's "1.23ms" / "456.00us" / "1.02s". */
function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

async function wrk(url: string): Promise<WrkResult> {
  const { stdout } = await run(
    'wrk',
    [
      `-t${args.threads}`,
      `-c${args.connections}`,
      `-d${args.duration}s`,
      '--latency',
      '-H',
      `Authorization: Bearer ${TOKEN}`,
      url,
    ],
    { timeout: (Number(args.duration) + 30) * 1000 },
  );
  const pct = (p: string) => ms(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const socketErrors = socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
    p50: pct('50'),
    p90: pct('90'),
    p99: pct('99'),
    errors: non2xx + socketErrors,
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

async function main(): Promise<void> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `owui_bench_api_${suffix}`;
  const role = { name: `owui_bench_api_${suffix}`, password: randomBytes(12).toString('hex') };
  await admin(ADMIN, `CREATE DATABASE ${quoteIdent(dbName)}`);
  const adminUrl = withDb(ADMIN, dbName);
  const serviceUrl = withDb(ADMIN, dbName, role);
  let server: { port: number; close(): Promise<void> } | undefined;
  const pool = createPool(serviceUrl, { max: 10 });
  const boss = createBoss({ connectionString: serviceUrl, max: 2 });
  try {
    await install({ adminUrl, serviceRole: role.name, servicePassword: role.password });
    const hostId = await registerHost(pool, { cluster: CLUSTER, hostname: 'bench', nodeName: 'node-a', role: 'node' });
    await admin(
      adminUrl,
      `INSERT INTO sync_metadata.leader_election (cluster_name, leader_id, leader_host_id, expires_at)
       VALUES ($1, 'node-a@bench', $2, now() + interval '1 hour')`,
      [CLUSTER, hostId],
    );
    await admin(
      adminUrl,
      `INSERT INTO sync_metadata.client_deployments (client_name, host_id, schema_name, sync_enabled, status,
                                                      last_sync_at, last_sync_status)
       SELECT 't' || i, $1::uuid, 'client_t' || i, true, 'active', now() - interval '1 minute', 'success'
         FROM generate_series(1, 50) i`,
      [hostId],
    );
    await admin(
      adminUrl,
      `INSERT INTO sync_metadata.sync_jobs (deployment_id, client_name, status, sync_type, triggered_by, rows_synced,
                                           duration_seconds, started_at, completed_at)
       SELECT d.deployment_id, d.client_name, 'success', 'incremental', 'scheduler', 100, 1.2,
              now() - make_interval(secs => g * 60), now() - make_interval(secs => g * 60 - 2)
         FROM sync_metadata.client_deployments d, generate_series(1, 100) g`,
    );
    await admin(adminUrl, 'ANALYZE');
    await boss.start();
    server = await startApiServer({
      pool,
      boss,
      cluster: CLUSTER,
      nodeName: 'node-a',
      hostId,
      logger: silentLogger(),
      metrics: createMetrics(),
      startedAt: new Date(),
      config: { port: 0, host: '127.0.0.1', auth: { apiToken: TOKEN } },
    });
    const base = `http://127.0.0.1:${server.port}`;
    const endpoints = [
      { name: 'GET /docs (baseline: no database)', url: `${base}/docs` },
      { name: 'GET /health', url: `${base}/health` },
      { name: 'GET /api/v1/sync/jobs', url: `${base}/api/v1/sync/jobs` },
      { name: 'GET /api/v1/sync/jobs?limit=100', url: `${base}/api/v1/sync/jobs?limit=100`, extra: true },
    ];
    await wrk(`${base}/health`); // warm-up: connections, JIT
    const results = new Map<string, WrkResult[]>();
    for (let round = 0; round < Number(args.rounds); round += 1) {
      for (const e of endpoints) results.set(e.name, [...(results.get(e.name) ?? []), await wrk(e.url)]);
    }
    const baseline = median((results.get(endpoints[0]!.name) ?? []).map((r) => r.p99));
    const os = await import('node:os');
    console.log(
      `wrk -t${args.threads} -c${args.connections} -d${args.duration}s on loopback, service pool of 10, ` +
        `${os.cpus().length} CPUs, load average ${os.loadavg()[0]?.toFixed(1)} at the end; medians of ${args.rounds} runs`,
    );
    console.log('| endpoint | requests/s | p50 | p90 | p99 | p99 vs baseline | p99 of each run | errors |');
    console.log('|---|---:|---:|---:|---:|---:|---|---:|');
    let pass = true;
    for (const e of endpoints) {
      const rs = results.get(e.name) ?? [];
      const p99 = median(rs.map((r) => r.p99));
      const errors = rs.reduce((n, r) => n + r.errors, 0);
      if (e !== endpoints[0] && !('extra' in e) && (p99 >= 50 || errors > 0)) pass = false;
      console.log(
        `| ${e.name} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.p50)).toFixed(2)} ms | ` +
          `${median(rs.map((r) => r.p90)).toFixed(2)} ms | ${p99.toFixed(2)} ms | ${(p99 / baseline).toFixed(1)}× | ${rs.map((r) => r.p99.toFixed(0)).join(' / ')} ms | ${errors} |`,
      );
    }
    console.log(pass ? 'p99 < 50 ms on every database endpoint: PASS' : 'p99 target (< 50 ms, no errors): FAIL');
    if (!pass) process.exitCode = 1;
  } finally {
    await server?.close();
    await boss.stop({ graceful: false }).catch(() => undefined);
    await pool.end();
    await admin(ADMIN, `DROP DATABASE IF EXISTS ${quoteIdent(dbName)} WITH (FORCE)`);
    await admin(ADMIN, `DROP ROLE IF EXISTS ${quoteIdent(role.name)}`).catch(() => undefined);
  }
}

await main();
