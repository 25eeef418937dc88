import { clusterConfigSchemaFor, type ClusterConfig } from '@owui-sync/engine/cluster';
import { runIfEntryPoint, startClusterProcess, type ProcessDeps, type RunningProcess } from '@owui-sync/engine/process';

/**
 * A scheduler only: registers as a host, takes part in the leader election and, while it leads, runs the
 * scheduler (enqueues due syncs and drills, marks silent hosts offline) and maintenance (history and queue
 * pruning). It runs no sync or drill and serves no API: pair it with workers (apps/worker) and, for the API, a
 * node. Run two for a hand-over; each replica registers under its own hostname.
 *
 *   DATABASE_URL=postgres://sync_service:…@db:5432/postgres tsx apps/scheduler/src/main.ts
 */

export type SchedulerConfig = ClusterConfig;
/** base → cluster, with the shared checks (as kind scheduler) and the cluster's own. */
export const schedulerConfigSchema = clusterConfigSchemaFor('scheduler');

export function startSchedulerProcess(config: SchedulerConfig, deps: ProcessDeps = {}): Promise<RunningProcess> {
  return startClusterProcess(config, 'scheduler', deps);
}

runIfEntryPoint(import.meta.url, 'scheduler', schedulerConfigSchema, startSchedulerProcess);
