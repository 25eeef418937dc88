/**
 * The job queues (pg-boss): enqueueing syncs and drills, queue counts per cluster, and the few reads of pg-boss's
 * job table that its API cannot answer (job-table.ts, the only module with SQL on it).
 */
export {
  enqueueSync,
  enqueueScheduledSyncs,
  enqueueScheduledDrills,
  requeueSync,
  clusterPriority,
  bossExecutor,
  QueueUnavailableError,
  type EnqueueOptions,
  type EnqueueResult,
  type ScheduledSync,
} from './enqueue.ts';
export {
  queueCounts,
  clusterQueueCounts,
  JOB_STATES,
  type JobState,
  type QueueCount,
  type QueueCountsOptions,
  type ClusterQueueCountsOptions,
} from './counts.ts';
export { listJobs, deleteQueuedSyncJobs, type JobRow, type ListJobsFilter, type JobTableSource } from './job-table.ts';
export { bossSettings, queueSchemaFor, type BossSettings } from './boss-settings.ts';
