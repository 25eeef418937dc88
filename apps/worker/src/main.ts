import { clusterConfigSchema, type ClusterConfig } from '@owui-sync/engine/cluster';
import { runIfEntryPoint, startClusterProcess, type ProcessDeps, type RunningProcess } from '@owui-sync/engine/process';

/**
 * An extra worker: registers as a host and runs sync jobs, nothing else (no election, no scheduler, no API). Run
 * as many as needed (`docker compose up --scale worker=N`); each replica registers under its own hostname.
 *
 *   WORKER_CONCURRENCY=2 DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/worker/src/main.ts
 */

export type WorkerConfig = ClusterConfig;
export const workerConfigSchema = clusterConfigSchema;

export function startWorkerProcess(config: WorkerConfig, deps: ProcessDeps = {}): Promise<RunningProcess> {
  return startClusterProcess(config, 'worker', deps);
}

runIfEntryPoint(import.meta.url, 'worker', workerConfigSchema, startWorkerProcess);
