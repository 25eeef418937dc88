import { z } from 'zod';

/** pg-boss schema; created at install time by the admin connection so the service never needs CREATE. */
export const PGBOSS_SCHEMA = 'pgboss';

/** The sync queue and its dead-letter queue. Queue creation is DDL in pg-boss (it may create a partition), so the
 * install step creates them; the service only sends, fetches and completes. */
export const SYNC_QUEUE = 'owui-sync';
export const SYNC_DEAD_LETTER_QUEUE = 'owui-sync-dead';

/**
 * Queue policy: `stately` + singletonKey = tenant means at most one queued and at most one active job per tenant;
 * a trigger arriving while one is queued coalesces with it.
 */
export const SYNC_QUEUE_OPTIONS = {
  policy: 'stately',
  retryLimit: 5,
  retryDelay: 5,
  retryBackoff: true,
  retryDelayMax: 300,
  // Above the worst sync we expect (a 250 MB tenant syncs in well under a minute); heartbeats catch dead workers
  // far sooner than expiry does.
  expireInSeconds: 3600,
  heartbeatSeconds: 30,
  // A queued job waits at most a week. A finished one is deleted by pg-boss's own maintenance two days after it
  // completed: the run's history is in sync_metadata.sync_jobs, so the queue keeps only what debugging needs
  // (at 10 000 tenants every 300 s, two days are about 5.8 million job rows).
  retentionSeconds: 7 * 24 * 3600,
  deleteAfterSeconds: 2 * 24 * 3600,
  deadLetter: SYNC_DEAD_LETTER_QUEUE,
  // Creating a job NOTIFYs listening workers, which then start it at once; workers behind a transaction pooler
  // cannot LISTEN and keep polling (the notification is simply not heard).
  notify: true,
} as const;

export const SYNC_DEAD_LETTER_QUEUE_OPTIONS = {
  policy: 'standard',
  retentionSeconds: 30 * 24 * 3600,
  deleteAfterSeconds: 30 * 24 * 3600,
} as const;

/** Payload of a sync job. */
export const syncJobPayloadSchema = z.object({
  deployment_id: z.uuid(),
  client_name: z.string().min(1),
  full_sync: z.boolean().default(false),
  triggered_by: z.string().min(1).max(200),
  requested_at: z.iso.datetime({ offset: true }).optional(),
  /** Leader epoch that enqueued the job (scheduler jobs only), for audit. */
  epoch: z.number().int().positive().optional(),
});
export type SyncJobPayload = z.infer<typeof syncJobPayloadSchema>;

/**
 * The restore-drill queue (see docs/restore.md, "Restore drills"): `stately` + singletonKey = tenant, like syncs, so a
 * tenant has at most one drill queued and one running. No dead-letter queue: a drill that keeps failing to run is
 * recorded as a failed drill by the worker; the next slot tries again.
 */
export const DRILL_QUEUE = 'owui-sync-drill';

export const DRILL_QUEUE_OPTIONS = {
  policy: 'stately',
  retryLimit: 2,
  retryDelay: 60,
  retryBackoff: true,
  retryDelayMax: 900,
  // A drill of a large tenant takes a few times its restore; a dead worker is caught by heartbeats much sooner.
  expireInSeconds: 4 * 3600,
  heartbeatSeconds: 30,
  retentionSeconds: 2 * 24 * 3600,
  // The outcome is in sync_state.restore_drills; the queue keeps finished jobs only for debugging.
  deleteAfterSeconds: 2 * 24 * 3600,
  notify: true,
} as const;

/** Payload of a drill job. */
export const drillJobPayloadSchema = z.object({
  deployment_id: z.uuid(),
  client_name: z.string().min(1),
  triggered_by: z.string().min(1).max(200),
  requested_at: z.iso.datetime({ offset: true }).optional(),
  epoch: z.number().int().positive().optional(),
});
export type DrillJobPayload = z.infer<typeof drillJobPayloadSchema>;
