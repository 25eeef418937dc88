import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { clusterPriority, createBoss } from '@owui-sync/engine/cluster';
import { createPool } from '@owui-sync/engine';
import { provisionTenant, tenantSchemaName } from '@owui-sync/engine/sync';
import { SYNC_QUEUE } from '@owui-sync/schema';
import { makeMiniOpenWebUI } from '../test/engine/helpers.ts';

/**
 * Sync throughput with 1, 2 and 4 worker processes (one sync at a time each) over many small tenants: every round
 * queues a full sync of every tenant at once and measures from the first job queued to the last one finished.
 */

const ROOT = path.resolve(import.meta.dirname, '..');

function startWorker(name: string, serviceUrl: string): { proc: ChildProcess; ready: Promise<void> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'apps/worker/src/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      DATABASE_URL: serviceUrl,
      DATABASE_POOLER: 'none',
      CLUSTER_NAME: 'bench',
      ROLE: name,
      HOST_NAME: 'bench',
      WORKER_CONCURRENCY: '1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('"level":50') || out.includes('"level":60')) reject(new Error(`${name}: ${out}`));
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}): ${out}`)));
    // The worker logs at warn level here, so readiness is read from the host row instead (see waitRegistered).
    resolve();
  });
  return { proc, ready };
}

export async function runThroughputBench(opts: {
  adminUrl: string;
  serviceUrl: string;
  tenants: number;
}): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'owui-bench-throughput-'));
  const adminPool = createPool(opts.adminUrl, { max: 4 });
  const serviceRole = decodeURIComponent(new URL(opts.serviceUrl).username);
  const names: string[] = [];
  const report: string[] = [];
  try {
    await adminPool.query(
      `INSERT INTO sync_metadata.hosts (host_id, hostname, cluster_name, node_name)
       VALUES (sync_metadata.host_identity('bench', 'bench', 'node-a'), 'bench', 'bench', 'node-a')
       ON CONFLICT (host_id) DO NOTHING`,
    );
    for (let i = 1; i <= opts.tenants; i += 1) {
      const name = `tp${i}`;
      const file = path.join(dir, `${name}.db`);
      makeMiniOpenWebUI(file, { chats: 60 });
      await provisionTenant({ adminPool, clientName: name, sqlitePath: file, serviceRole });
      await adminPool.query(
        `INSERT INTO sync_metadata.client_deployments (client_name, host_id, sqlite_path, schema_name, sync_enabled, status)
         VALUES ($1, sync_metadata.host_identity('bench', 'bench', 'node-a'), $2, $3, false, 'active')`,
        [name, file, tenantSchemaName(name)],
      );
      names.push(name);
    }
    const deployments = new Map<string, string>(
      (
        await adminPool.query('SELECT client_name, deployment_id::text AS id FROM sync_metadata.client_deployments')
      ).rows.map((r: { client_name: string; id: string }) => [r.client_name, r.id]),
    );
    const boss = createBoss({ connectionString: opts.serviceUrl, max: 2 });
    await boss.start();
    const results: { workers: number; perMinute: number; seconds: number }[] = [];
    for (const workers of [1, 2, 4]) {
      const procs = Array.from({ length: workers }, (_, i) =>
        startWorker(`bench-worker-${workers}-${i + 1}`, opts.serviceUrl),
      );
      await Promise.all(procs.map((p) => p.ready));
      // Ready when every worker's host row is online.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await adminPool.query(
          `SELECT count(*)::int AS n FROM sync_metadata.hosts WHERE node_name LIKE $1 AND status = 'online'`,
          [`bench-worker-${workers}-%`],
        );
        if (r.rows[0].n === workers) break;
        if (Date.now() > deadline) throw new Error('bench workers did not register');
        await new Promise((res) => setTimeout(res, 100));
      }
      await new Promise((res) => setTimeout(res, 1000));
      const before = (
        await adminPool.query(`SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE status = 'success'`)
      ).rows[0].n as number;
      const started = performance.now();
      await boss.insert(
        SYNC_QUEUE,
        names.map((name) => ({
          data: { deployment_id: deployments.get(name), client_name: name, full_sync: true, triggered_by: 'bench' },
          singletonKey: name,
          priority: clusterPriority('bench'),
        })),
      );
      for (;;) {
        const r = await adminPool.query(
          `SELECT count(*)::int AS n FROM sync_metadata.sync_jobs WHERE status = 'success'`,
        );
        if (r.rows[0].n - before >= names.length) break;
        if (performance.now() - started > 600_000) throw new Error('throughput round did not finish in 10 minutes');
        await new Promise((res) => setTimeout(res, 50));
      }
      const seconds = (performance.now() - started) / 1000;
      results.push({ workers, seconds, perMinute: (names.length / seconds) * 60 });
      for (const p of procs) p.proc.kill('SIGTERM');
      await Promise.all(
        procs.map((p) => new Promise((res) => (p.proc.exitCode !== null ? res(null) : p.proc.once('exit', res)))),
      );
    }
    await boss.stop({ graceful: false });
    const base = results[0]!.perMinute;
    report.push(
      `Throughput, ${opts.tenants} small tenants (full sync each, ~60 chats), worker processes × 1 sync each:`,
    );
    for (const r of results) {
      report.push(
        `  ${r.workers} worker${r.workers > 1 ? 's' : ' '}  ${r.perMinute.toFixed(0).padStart(5)} syncs/min  (${r.seconds.toFixed(1)} s, ${(r.perMinute / base).toFixed(2)}× one worker)`,
      );
    }
    return report;
  } finally {
    await adminPool.end();
    rmSync(dir, { recursive: true, force: true });
  }
}
