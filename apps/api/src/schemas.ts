import { z } from '@hono/zod-openapi';
import { CLIENT_NAME_PATTERN, SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import { STATE_KEY_PATTERN } from '@owui-sync/engine/state';
import { JOB_STATES } from '@owui-sync/engine/cluster';

/**
 * Request schemas (they validate every body, query and path parameter and generate /openapi.json) and the response
 * shapes the OpenAPI document describes.
 */

export const clientName = z
  .string()
  .regex(CLIENT_NAME_PATTERN, 'lowercase letters, digits, "-" and "_", starting with a letter or digit (max 48)')
  .openapi({ example: 'chat-test' });

const limit = (def: number, max: number) =>
  z.coerce
    .number()
    .int()
    .min(1)
    .max(max)
    .default(def)
    .openapi({ example: def, description: `1–${max}` });

export const errorSchema = z
  .object({
    error: z.string().openapi({ example: 'not_found' }),
    message: z.string().openapi({ example: 'client "acme" is not registered in cluster "prod-host-1"' }),
    issues: z.array(z.object({ path: z.string(), message: z.string(), code: z.string().optional() })).optional(),
  })
  .openapi('Error');

export const healthSchema = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    node_id: z.string().openapi({ example: 'node-a' }),
    role: z.enum(['leader', 'follower', 'api', 'unknown']).openapi({
      description:
        'leader or follower (a node or scheduler), api (an API-only process: never leads), unknown (no database)',
    }),
    is_leader: z.boolean(),
    leader_id: z.string().nullable().openapi({ example: 'node-a@host-1' }),
    leader_epoch: z.number().nullable().optional(),
    cluster_name: z.string().openapi({ example: 'prod-host-1' }),
    uptime_seconds: z.number().openapi({ example: 3600 }),
    last_sync: z.string().nullable().openapi({ example: '2025-01-08T10:30:00.000Z' }),
    error: z.string().optional(),
    warning: z
      .string()
      .optional()
      .openapi({ description: 'set while the API lets callers on this machine act without a token' }),
  })
  .openapi('Health');

export const clusterNodeSchema = z
  .object({
    host_id: z.string(),
    hostname: z.string(),
    node_name: z.string(),
    cluster_name: z.string(),
    role: z.string().openapi({ description: 'node, worker or admin' }),
    last_heartbeat: z.string(),
    seconds_since_heartbeat: z.number(),
    status: z.enum(['healthy', 'stale', 'offline', 'stopped']),
    host_status: z.string().openapi({ description: 'online, offline or stopped as recorded in sync_metadata.hosts' }),
    is_leader: z.boolean(),
    version: z.string().nullable(),
  })
  .openapi('ClusterNode');

export const clusterStatusSchema = z
  .object({
    cluster_name: z.string(),
    leader: z
      .object({
        leader_id: z.string(),
        host_id: z.string().nullable(),
        epoch: z.number(),
        expires_at: z.string(),
        lease_valid: z.boolean(),
      })
      .nullable(),
    nodes: z.array(clusterNodeSchema),
  })
  .openapi('ClusterStatus');

export const triggerBodySchema = z
  .object({
    client_name: clientName,
    full_sync: z.boolean().default(false).openapi({ description: 'true: full sync; false (default): incremental' }),
  })
  .strict()
  .openapi('SyncTriggerRequest');

export const triggerResponseSchema = z
  .object({
    status: z.literal('queued'),
    client: z.string(),
    full_sync: z.boolean(),
    queued_at: z.string(),
    job_id: z.string().nullable(),
    coalesced: z.boolean(),
    triggered_by: z.literal('api'),
    message: z.string(),
  })
  .openapi('SyncTriggerResponse');

export const JOB_STATUSES = ['pending', 'running', 'success', 'failed', 'conflict'] as const;

export const jobsQuerySchema = z.object({
  client_name: clientName.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  limit: limit(20, 1000),
});

export const jobSchema = z
  .object({
    job_id: z.string(),
    client_name: z.string(),
    queue_job_id: z.string().nullable(),
    worker_id: z.string().nullable(),
    status: z.enum(JOB_STATUSES),
    sync_type: z.enum(['full', 'incremental']),
    triggered_by: z.string(),
    rows_synced: z.number(),
    rows_failed: z.number(),
    rows_deleted: z.number(),
    conflicts_detected: z.number(),
    conflicts_unresolved: z.number(),
    duration_seconds: z.number().nullable(),
    error: z.string().nullable(),
    started_at: z.string(),
    completed_at: z.string().nullable(),
  })
  .openapi('SyncJob');

export const jobsResponseSchema = z.object({ jobs: z.array(jobSchema), count: z.number() }).openapi('SyncJobs');

export const conflictsQuerySchema = z.object({
  client_name: clientName.optional(),
  limit: limit(100, 1000),
  resolved: z
    .enum(['false', 'true', 'all'])
    .default('false')
    .openapi({ description: 'false (default): unresolved only; true: resolved only; all' }),
  table: z.string().min(1).max(63).optional(),
});

export const conflictSchema = z
  .object({
    log_id: z.number(),
    client_id: z.string(),
    table_name: z.string(),
    row_key: z.unknown(),
    conflict_type: z.string(),
    source_data: z.unknown(),
    target_data: z.unknown(),
    resolution_strategy: z.string(),
    resolution: z.string().nullable(),
    resolved_data: z.unknown(),
    job_id: z.string().nullable(),
    detected_at: z.string(),
    resolved_at: z.string().nullable(),
    resolved_by: z.string().nullable(),
  })
  .openapi('Conflict');

export const conflictsResponseSchema = z
  .object({ conflicts: z.array(conflictSchema), count: z.number() })
  .openapi('Conflicts');

export const conflictIdParams = z.object({
  id: z
    .string()
    .regex(/^[1-9][0-9]{0,17}$/, 'a conflict log_id (positive integer)')
    .openapi({ param: { name: 'id', in: 'path' }, example: '42' }),
});

export const resolveBodySchema = z
  .union([
    z.object({ keep: z.enum(['source', 'target']) }).strict(),
    z.object({ data: z.record(z.string(), z.unknown()) }).strict(),
  ])
  .openapi('ConflictResolution', {
    description: '{"keep": "source"|"target"} or {"data": {…merged row, json columns as JSON text…}}',
  });

export const resolveResponseSchema = z
  .object({ log_id: z.number(), resolution: z.enum(['source', 'target', 'merged']), resolved_by: z.string() })
  .openapi('ConflictResolved');

export const stateKey = z
  .string()
  .regex(STATE_KEY_PATTERN, '1–255 characters of letters, digits and . _ : @ / -, starting with a letter or digit')
  .openapi({ example: 'deployment.acme-corp' });

export const stateKeyParams = z.object({
  key: stateKey.openapi({ param: { name: 'key', in: 'path' } }),
});

export const stateQuerySchema = z.object({ key: stateKey });

export const stateResponseSchema = z
  .object({
    key: z.string(),
    value: z.unknown().openapi({ example: { status: 'active', sync_enabled: true, sync_interval: 300 } }),
    cached: z.boolean(),
    age_seconds: z.number(),
    updated_at: z.string().nullable(),
  })
  .openapi('State');

/** PUT body: {value} (key from the path) or {key, value} (the design documents' form). */
export const statePutBodySchema = z
  .object({
    key: stateKey.optional(),
    value: z.unknown().openapi({ example: { sync_interval: 900 } }),
  })
  .strict()
  .refine((b) => b.value !== undefined, { message: 'value is required', path: ['value'] })
  .openapi('StateUpdate');

export const stateBodyWithKeySchema = z
  .object({ key: stateKey, value: z.unknown() })
  .strict()
  .refine((b) => b.value !== undefined, { message: 'value is required', path: ['value'] })
  .openapi('StateUpdateWithKey');

export const statePutResponseSchema = z
  .object({
    success: z.literal(true),
    key: z.string(),
    value: z.unknown(),
    updated_at: z.string().nullable(),
    version: z.number().nullable(),
  })
  .openapi('StateUpdated');

export const queueResponseSchema = z
  .object({
    cluster_name: z.string(),
    queues: z.array(
      z.object({
        queue: z.string(),
        states: z.record(z.string(), z.number()),
        oldest_waiting_seconds: z.number().nullable(),
      }),
    ),
    recent: z.array(
      z.object({
        id: z.string(),
        queue: z.string(),
        state: z.string(),
        client_name: z.string().nullable(),
        full_sync: z.boolean().nullable(),
        triggered_by: z.string().nullable(),
        retry_count: z.number(),
        created_on: z.string(),
        started_on: z.string().nullable(),
        completed_on: z.string().nullable(),
      }),
    ),
  })
  .openapi('Queue');

export const queueJobsQuerySchema = z.object({
  state: z.enum(JOB_STATES).optional().openapi({ description: 'only jobs in this pg-boss state' }),
  queue: z.enum([SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE]).optional().openapi({ description: 'only this queue' }),
  client_name: clientName.optional(),
  limit: limit(100, 1000),
});

export const queueJobsResponseSchema = z
  .object({
    cluster_name: z.string(),
    schema: z.string().openapi({ description: "this cluster's pg-boss schema", example: 'pgboss_prod_host_1' }),
    jobs: z.array(
      z.object({
        id: z.string(),
        queue: z.string(),
        state: z.enum(JOB_STATES),
        client_name: z.string().nullable(),
        deployment_id: z.string().nullable(),
        full_sync: z.boolean().nullable(),
        triggered_by: z.string().nullable(),
        retry_count: z.number(),
        retry_limit: z.number(),
        created_on: z.string(),
        start_after: z.string(),
        started_on: z.string().nullable(),
        completed_on: z.string().nullable(),
      }),
    ),
    count: z.number(),
  })
  .openapi('QueueJobs');

export const tenantsResponseSchema = z
  .object({
    tenants: z.array(
      z.object({
        client_name: z.string(),
        status: z.string(),
        sync_enabled: z.boolean(),
        sync_interval: z.number(),
        last_sync_at: z.string().nullable(),
        last_sync_status: z.string().nullable(),
        lag_seconds: z.number().nullable(),
        last_job_status: z.string().nullable(),
        unresolved_conflicts: z.number(),
        hostname: z.string(),
        last_drill_at: z.string().nullable().openapi({ description: 'start of the latest restore drill' }),
        last_drill_passed: z.boolean().nullable(),
        last_drill_failure: z.string().nullable(),
        last_passed_drill_at: z.string().nullable().openapi({ description: 'start of the latest passed drill' }),
      }),
    ),
  })
  .openapi('Tenants');
