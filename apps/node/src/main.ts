import { apiConfigShape, serveApi, type ApiProcessConfig, type ServedApi } from '@owui-sync/api';
import { refineClusterConfig, type ClusterRuntime } from '@owui-sync/engine/cluster';
import { runIfEntryPoint, startClusterProcess, type ProcessDeps } from '@owui-sync/engine/process';
import { composeConfig } from '@owui-sync/schema';

/**
 * A full node (node-a, node-b): host registry, leader election, scheduler and maintenance (act while leading),
 * sync and drill workers, and the API, in one process: the engine's node runtime plus the API app's serveApi (the
 * one app this app depends on, through its package entry).
 *
 *   ROLE=node-a API_PORT=9443 DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/node/src/main.ts
 */

/** The cluster runtime's variables plus the API's own (API_TOKEN, JWT_SECRET, API_PUBLIC_READS, …). */
export type NodeConfig = ApiProcessConfig;
/** base → cluster → api, with the shared checks (as kind node) and the cluster's own. */
export const nodeConfigSchema = composeConfig('node', apiConfigShape).superRefine(refineClusterConfig);

export type RunningNode = {
  readonly runtime: ClusterRuntime;
  /** API port, or null when ENABLE_API is off. */
  readonly port: number | null;
  stop(): Promise<void>;
};

export async function startNode(config: NodeConfig, deps: ProcessDeps = {}): Promise<RunningNode> {
  const running = await startClusterProcess(config, 'node', deps);
  const { runtime } = running;
  let api: ServedApi | undefined;
  try {
    if (config.ENABLE_API) api = await serveApi(running, config);
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

runIfEntryPoint(import.meta.url, 'node', nodeConfigSchema, startNode);
