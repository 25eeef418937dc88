import { pathToFileURL } from 'node:url';
import { apiConfigFromEnv, apiOwnConfigShape, startApiServer, type ApiEnvConfig } from '@owui-sync/api';
import {
  clusterConfigShape,
  processIdentity,
  refineClusterConfig,
  type ClusterConfig,
  startClusterRuntime,
  type ClusterRuntime,
} from '@owui-sync/engine/cluster';
import type { RunTenantSync } from '@owui-sync/engine/cluster';
import { loadConfig, createLogger, type Logger, createMetrics, type SyncMetrics } from '@owui-sync/engine';
import { composeConfig } from '@owui-sync/schema';
import { loadRunTenantSync, notRunningSyncs, productVersion, runUntilSignalled } from './process.ts';

/**
 * A full node (node-a, node-b): host registry, leader election, scheduler (acts while leading), sync worker and
 * the API, in one process.
 *
 *   ROLE=node-a API_PORT=9443 DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/node/src/main.ts
 */

/** The cluster runtime's variables plus the API's own (API_TOKEN, JWT_SECRET, API_PUBLIC_READS, …). */
export type NodeConfig = ClusterConfig & Partial<Pick<ApiEnvConfig, keyof typeof apiOwnConfigShape>>;
/** base → cluster → api, with the shared checks and the cluster's own. */
export const nodeConfigSchema = composeConfig('node', { ...clusterConfigShape, ...apiOwnConfigShape }).superRefine(
  refineClusterConfig,
);

export type RunningNode = {
  readonly runtime: ClusterRuntime;
  /** API port, or null when ENABLE_API is off. */
  readonly port: number | null;
  stop(): Promise<void>;
};

export async function startNode(
  config: NodeConfig,
  deps: { logger?: Logger; metrics?: SyncMetrics; runTenantSync?: RunTenantSync; signal?: AbortSignal } = {},
): Promise<RunningNode> {
  const identity = processIdentity(config, 'node');
  const logger =
    deps.logger ??
    createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, base: { node: identity.nodeName } });
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const startedAt = new Date();
  const runtime = await startClusterRuntime({
    config,
    kind: 'node',
    runTenantSync: deps.runTenantSync ?? (config.WORKER_CONCURRENCY > 0 ? await loadRunTenantSync() : notRunningSyncs),
    logger,
    metrics,
    version: productVersion(),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  let api: { port: number; close(): Promise<void> } | undefined;
  try {
    if (config.ENABLE_API) {
      api = await startApiServer({
        pool: runtime.pool,
        boss: runtime.boss,
        cluster: config.CLUSTER_NAME,
        nodeName: runtime.nodeName,
        hostId: runtime.hostId,
        ...(runtime.elector ? { heldEpoch: () => runtime.elector?.epoch() ?? null } : {}),
        logger,
        metrics,
        startedAt,
        config: apiConfigFromEnv(config),
      });
    }
  } catch (error) {
    await runtime.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    runtime,
    port: api?.port ?? null,
    stop() {
      stopping ??= (async () => {
        // Hand leadership over before anything slow; keep /health answering until the worker is done.
        await runtime.stop();
        await api?.close();
      })();
      return stopping;
    },
  };
}

async function main(): Promise<void> {
  const fallback = createLogger({ level: process.env.LOG_LEVEL ?? 'info' });
  await runUntilSignalled(
    'node',
    async (signal) => {
      // The one pipeline: *_FILE secrets, .credentials, defaults, shared checks (as syncctl node reads them).
      const config = loadConfig(nodeConfigSchema, { env: process.env, cwd: process.cwd() });
      return startNode(config, { signal });
    },
    fallback,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
