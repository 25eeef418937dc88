import { clusterConfigSchema, type ClusterConfig } from '@owui-sync/engine/cluster';
import { createLogger, loadConfig } from '@owui-sync/engine';
import {
  isEntryPoint,
  runProcess,
  startClusterProcess,
  type ProcessDeps,
  type RunningProcess,
} from '@owui-sync/engine/process';

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

if (isEntryPoint(import.meta.url)) {
  void runProcess(
    'worker',
    // The one pipeline: *_FILE secrets, .credentials, defaults, shared checks.
    async (signal) =>
      startWorkerProcess(loadConfig(workerConfigSchema, { env: process.env, cwd: process.cwd() }), { signal }),
    createLogger({ level: process.env.LOG_LEVEL ?? 'info' }),
  );
}
