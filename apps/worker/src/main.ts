import { pathToFileURL } from 'node:url';
import {
  clusterConfigSchema,
  processIdentity,
  type ClusterConfig,
  startClusterRuntime,
  type ClusterRuntime,
} from '@owui-sync/engine/cluster';
import type { RunTenantSync } from '@owui-sync/engine/cluster';
import { loadConfig, createLogger, type Logger, createMetrics, type SyncMetrics } from '@owui-sync/engine';
import { loadRunTenantSync, productVersion, runUntilSignalled } from '../../node/src/process.ts';

/**
 * An extra worker: registers as a host and runs sync jobs, nothing else (no election, no scheduler, no API). Run
 * as many as needed (`docker compose up --scale worker=N`); each replica registers under its own hostname.
 *
 *   WORKER_CONCURRENCY=2 DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/worker/src/main.ts
 */

export type WorkerConfig = ClusterConfig;
export const workerConfigSchema = clusterConfigSchema;

export async function startWorkerProcess(
  config: WorkerConfig,
  deps: { logger?: Logger; metrics?: SyncMetrics; runTenantSync?: RunTenantSync; signal?: AbortSignal } = {},
): Promise<{ runtime: ClusterRuntime; stop(): Promise<void> }> {
  const identity = processIdentity(config, 'worker');
  const logger =
    deps.logger ??
    createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, base: { node: identity.nodeName } });
  const runtime = await startClusterRuntime({
    config: config.WORKER_CONCURRENCY > 0 ? config : { ...config, WORKER_CONCURRENCY: 1 },
    kind: 'worker',
    runTenantSync: deps.runTenantSync ?? (await loadRunTenantSync()),
    logger,
    metrics: deps.metrics ?? createMetrics({ defaultMetrics: true }),
    version: productVersion(),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return { runtime, stop: () => runtime.stop() };
}

async function main(): Promise<void> {
  const fallback = createLogger({ level: process.env.LOG_LEVEL ?? 'info' });
  await runUntilSignalled(
    'worker',
    async (signal) => {
      // The one pipeline: *_FILE secrets, .credentials, defaults, shared checks.
      const config = loadConfig(workerConfigSchema, { env: process.env, cwd: process.cwd() });
      return startWorkerProcess(config, { signal });
    },
    fallback,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
