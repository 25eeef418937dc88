import os from 'node:os';
import type pg from 'pg';
import { createBoss, enqueueSync, resolveQueueSchema, type EnqueueResult } from '@owui-sync/engine/cluster';
import { createMetrics } from '@owui-sync/engine';
import type { Logger } from '@owui-sync/engine';
import { runTenantSync, type SyncProgress, type SyncRunResult } from '@owui-sync/engine/sync';
import { bar } from '../format.ts';
import { assertSyncAllowed, findDeployment, inCluster, validName, type TenantRegistration } from './tenants.ts';

/** Manual syncs: in this process (sync-client-to-supabase) or through the cluster's queue. */

export async function loadDeployment(pool: pg.Pool, cluster: string, name: string): Promise<TenantRegistration> {
  validName(name);
  return inCluster(pool, cluster, (c) => findDeployment(c, name, cluster));
}

export type ManualSyncOptions = {
  readonly pool: pg.Pool;
  readonly cluster: string;
  readonly name: string;
  readonly fullSync: boolean;
  readonly triggeredBy: string;
  readonly force?: boolean;
  /** Rows per transaction and claim lifetime, from the configuration (BATCH_SIZE, SYNC_CLAIM_TTL). */
  readonly batchSize: number;
  readonly claimTtlSeconds: number;
  readonly logger?: Logger;
  readonly onProgress?: (p: SyncProgress) => void;
  readonly signal?: AbortSignal;
};

/** Runs one sync of the tenant now, in this process, recording it in sync_jobs like any other run. */
export async function runManualSync(opts: ManualSyncOptions): Promise<SyncRunResult> {
  const dep = await loadDeployment(opts.pool, opts.cluster, opts.name);
  assertSyncAllowed(dep, Boolean(opts.force));
  return runTenantSync({
    pool: opts.pool,
    clientName: dep.client_name,
    scope: { hostId: dep.host_id, cluster: opts.cluster },
    fullSync: opts.fullSync,
    triggeredBy: opts.triggeredBy,
    workerId: `syncctl@${os.hostname()}`,
    batchSize: opts.batchSize,
    claimTtlSeconds: opts.claimTtlSeconds,
    metrics: createMetrics(),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/** Queues one sync of the tenant for the cluster's workers; coalesces with a job already queued. */
export async function enqueueManualSync(opts: {
  serviceUrl: string;
  pool: pg.Pool;
  cluster: string;
  name: string;
  fullSync: boolean;
  triggeredBy: string;
  force?: boolean;
  logger?: Logger;
}): Promise<EnqueueResult & { client_name: string }> {
  const dep = await loadDeployment(opts.pool, opts.cluster, opts.name);
  assertSyncAllowed(dep, Boolean(opts.force));
  const boss = createBoss({
    connectionString: opts.serviceUrl,
    schema: await resolveQueueSchema(opts.pool, opts.cluster),
    max: 1,
    instanceName: `syncctl@${os.hostname()}`,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  await boss.start();
  try {
    const r = await enqueueSync(boss, {
      deployment_id: dep.deployment_id,
      client_name: dep.client_name,
      full_sync: opts.fullSync,
      triggered_by: opts.triggeredBy,
    });
    return { ...r, client_name: dep.client_name };
  } finally {
    await boss.stop({ graceful: false }).catch(() => undefined);
  }
}

/** A progress display on a terminal: one line per table, redrawn in place while it runs. */
export function progressPrinter(stream: NodeJS.WritableStream): { update: (p: SyncProgress) => void; end: () => void } {
  let current: string | null = null;
  let lastDraw = 0;
  let lastLine = '';
  const draw = (p: SyncProgress, force: boolean) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const label = `[${String(p.tableIndex + 1).padStart(String(p.tableCount).length)}/${p.tableCount}] ${p.table}`;
    lastLine = `${label.padEnd(32)} ${bar(p.rowsDone, p.rowsTotal)}`;
    stream.write(`\r\x1b[2K${lastLine}`);
  };
  return {
    update(p) {
      if (current !== null && current !== p.table) stream.write('\n');
      const isNew = current !== p.table;
      current = p.table;
      draw(p, isNew || (p.rowsTotal !== null && p.rowsDone >= p.rowsTotal));
    },
    end() {
      if (current !== null) stream.write(lastLine ? '\n' : '');
    },
  };
}
