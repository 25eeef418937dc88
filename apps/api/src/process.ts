import type { ClusterConfig } from '@owui-sync/engine/cluster';
import { startClusterProcess, type ProcessDeps, type RunningProcess } from '@owui-sync/engine/process';
import { apiConfigFromEnv, type ApiEnvConfig, type apiOwnConfigShape } from './config.ts';
import { startApiServer } from './server.ts';

/**
 * The API on top of a started cluster process: its service-role pool, queue client (sync triggers, queue counts),
 * host id (the access scope of every request's transaction) and, where the process takes part in the election,
 * its held lease epoch for /health. A full node (apps/node) and the API-only process (apps/api main) both serve
 * the API through this.
 */

/** The cluster runtime's variables plus the API's own (API_TOKEN, JWT_SECRET, API_PUBLIC_READS, …). */
export type ApiProcessConfig = ClusterConfig & Partial<Pick<ApiEnvConfig, keyof typeof apiOwnConfigShape>>;

export type ServedApi = { readonly port: number; close(): Promise<void> };

/** Serves the API for `process` on config.API_PORT; resolves once it listens. */
export function serveApi(
  process: RunningProcess,
  config: ApiProcessConfig,
  options: { readonly apiOnly?: boolean } = {},
): Promise<ServedApi> {
  const { runtime } = process;
  return startApiServer({
    pool: runtime.pool,
    boss: runtime.boss,
    cluster: config.CLUSTER_NAME,
    nodeName: runtime.nodeName,
    hostId: runtime.hostId,
    ...(runtime.elector ? { heldEpoch: () => runtime.elector?.epoch() ?? null } : {}),
    ...(options.apiOnly ? { apiOnly: true } : {}),
    logger: process.logger,
    metrics: process.metrics,
    startedAt: process.startedAt,
    config: apiConfigFromEnv(config),
  });
}

export type RunningApiProcess = RunningProcess & { readonly port: number };

/**
 * An API-only process: registers as a host of role `api` and serves the REST API and the dashboard of its cluster;
 * no election, no scheduler, no worker. Stopping closes the listener first (a load balancer moves on to another
 * API process or node), then marks the host stopped and closes its connections.
 */
export async function startApiProcess(config: ApiProcessConfig, deps: ProcessDeps = {}): Promise<RunningApiProcess> {
  const running = await startClusterProcess(config, 'api', deps);
  let api: ServedApi;
  try {
    api = await serveApi(running, config, { apiOnly: true });
  } catch (error) {
    await running.stop();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    ...running,
    port: api.port,
    stop() {
      stopping ??= (async () => {
        await api.close();
        await running.stop();
      })();
      return stopping;
    },
  };
}
