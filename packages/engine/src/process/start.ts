import { processIdentity, type ClusterConfig, type ProcessKind } from '../cluster/config.ts';
import { startClusterRuntime, type ClusterRuntime } from '../cluster/runtime.ts';
import type { RunTenantSync } from '../cluster/worker.ts';
import { createLogger, type Logger } from '../logger.ts';
import { createMetrics, type SyncMetrics } from '../metrics.ts';
import { productVersion } from './version.ts';

export type { ProcessKind };

export type ProcessDeps = {
  readonly logger?: Logger;
  readonly metrics?: SyncMetrics;
  readonly runTenantSync?: RunTenantSync;
  /** Aborts a start-up still waiting for the database. */
  readonly signal?: AbortSignal;
};

export type RunningProcess = {
  readonly runtime: ClusterRuntime;
  readonly logger: Logger;
  readonly metrics: SyncMetrics;
  readonly startedAt: Date;
  stop(): Promise<void>;
};

/** The sync engine's runTenantSync (loaded only by processes that run syncs). */
export async function loadRunTenantSync(): Promise<RunTenantSync> {
  const mod = await import('../sync/index.ts');
  return mod.runTenantSync;
}

/** Stand-in for a process that runs no syncs (WORKER_CONCURRENCY=0, a scheduler, an API-only process). */
export const notRunningSyncs: RunTenantSync = async () => {
  throw new Error('this process runs no syncs');
};

/**
 * Starts the cluster side of a node, worker, scheduler or API-only process from its parsed configuration: a logger
 * and metrics registry (unless given), the sync engine where the process runs syncs, and the cluster runtime of
 * that kind. A worker always runs at least one sync at a time; a scheduler or API-only process never runs one.
 */
export async function startClusterProcess(
  config: ClusterConfig,
  kind: ProcessKind,
  deps: ProcessDeps = {},
): Promise<RunningProcess> {
  const identity = processIdentity(config, kind);
  const logger =
    deps.logger ??
    createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, base: { node: identity.nodeName } });
  const metrics = deps.metrics ?? createMetrics({ defaultMetrics: true });
  const startedAt = new Date();
  const runsSyncs = kind === 'worker' || (kind === 'node' && config.WORKER_CONCURRENCY > 0);
  const runtime = await startClusterRuntime({
    config: kind === 'worker' && config.WORKER_CONCURRENCY < 1 ? { ...config, WORKER_CONCURRENCY: 1 } : config,
    kind,
    runTenantSync: deps.runTenantSync ?? (runsSyncs ? await loadRunTenantSync() : notRunningSyncs),
    logger,
    metrics,
    version: productVersion(),
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  return { runtime, logger, metrics, startedAt, stop: () => runtime.stop() };
}
