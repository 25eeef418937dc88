import { createRoute } from '@hono/zod-openapi';
import { AppError, ConflictError, ERROR_CODES, NotFoundError } from '@owui-sync/engine';
import { clusterQueueCounts, enqueueSync, listJobs, queueSchemaFor, type JobState } from '@owui-sync/engine/queue';
import {
  canSyncNow,
  clusterDeploymentIds,
  findTenant,
  listSyncJobs,
  SYNC_REFUSALS,
  tenantStatuses,
} from '@owui-sync/engine/tenants';
import { SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from '@owui-sync/schema';
import { actor } from '../auth.ts';
import { iso, reply, replyJsonText, type ApiApp, type RouteContext } from '../context.ts';
import {
  errorSchema,
  jobsQuerySchema,
  jobsResponseSchema,
  queueJobsQuerySchema,
  queueJobsResponseSchema,
  queueResponseSchema,
  tenantsResponseSchema,
  triggerBodySchema,
  triggerResponseSchema,
} from '../schemas.ts';
import { commonErrors, json } from './openapi.ts';

/** POST /api/v1/sync/trigger, GET /api/v1/sync/jobs, GET /api/v1/queue, GET /api/v1/queue/jobs, GET /api/v1/tenants. */

const errors = commonErrors;

/** Deployment ids of this cluster's tenants (pg-boss jobs carry one in their data). */
function clusterTenantIds(ctx: RouteContext): Promise<string[]> {
  return ctx.inCluster((client) => clusterDeploymentIds(client, ctx.deps.cluster));
}

export function registerSyncRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;
  const publicReads = deps.config.auth?.publicReads ?? false;

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/sync/trigger',
      tags: ['sync'],
      summary: 'Queue a sync of one tenant (triggered_by "api"); coalesces with a job already queued',
      security: [{ bearer: [] }],
      middleware: [auth.require('sync:trigger')] as const,
      request: { body: { content: { 'application/json': { schema: triggerBodySchema } }, required: true } },
      responses: {
        200: { description: 'queued (or merged into the queued job)', content: json(triggerResponseSchema) },
        ...errors,
        404: { description: 'unknown tenant', content: json(errorSchema) },
        409: { description: 'tenant paused', content: json(errorSchema) },
        503: { description: 'queue unavailable', content: json(errorSchema) },
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const dep = await ctx.inCluster((client) => findTenant(client, body.client_name, deps.cluster));
      const refusal = canSyncNow(dep, { clientName: body.client_name, scheduled: false });
      if (!dep || refusal?.reason === SYNC_REFUSALS.notRegistered) {
        throw new NotFoundError(
          `client "${body.client_name}" is not registered in cluster "${deps.cluster}"; register it: ` +
            `syncctl client register ${body.client_name} --sqlite PATH`,
          { client_name: body.client_name },
        );
      }
      if (refusal?.reason === SYNC_REFUSALS.paused) {
        throw new ConflictError(
          `${refusal.message}; run: syncctl client start ${body.client_name} ` +
            `(or PUT /api/v1/state/deployment.${body.client_name} {"value": {"sync_enabled": true}})`,
          { client_name: body.client_name, status: dep.status },
        );
      }
      if (refusal) throw new ConflictError(`${refusal.message}; register it again to sync it`);
      if (!deps.boss) {
        throw new AppError(
          ERROR_CODES.database,
          'this node has no connection to the job queue; send the trigger to another node or retry shortly',
        );
      }
      const result = await enqueueSync(deps.boss, {
        deployment_id: dep.deployment_id,
        client_name: body.client_name,
        full_sync: body.full_sync,
        triggered_by: 'api',
      });
      deps.metrics.jobsEnqueued.inc({ triggered_by: 'api' });
      deps.logger.info(
        { client: body.client_name, job: result.jobId, coalesced: result.coalesced, by: actor(c) },
        `sync of ${body.client_name} ${result.coalesced ? 'merged into the queued job' : 'queued'} (api)`,
      );
      return reply(c, {
        status: 'queued',
        client: body.client_name,
        full_sync: body.full_sync,
        queued_at: result.queuedAt,
        job_id: result.jobId,
        coalesced: result.coalesced,
        triggered_by: 'api',
        message: result.coalesced
          ? `a sync of ${body.client_name} was already queued; this request was merged into it` +
            (body.full_sync ? ' (it stays the kind it was queued as)' : '')
          : `sync of ${body.client_name} queued`,
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/sync/jobs',
      tags: ['sync'],
      summary: 'Recent sync jobs (sync_metadata.sync_jobs), newest first',
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: publicReads })] as const,
      request: { query: jobsQuerySchema },
      responses: { 200: { description: 'jobs', content: json(jobsResponseSchema) }, ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = `jobs:${q.client_name ?? ''}:${q.status ?? ''}:${q.limit}`;
      // Identical concurrent requests share the query and the serialised answer.
      const body = await ctx.shared(key, async () => {
        const rows = await ctx.inCluster((client) =>
          listSyncJobs(client, deps.cluster, { clientName: q.client_name, status: q.status, limit: q.limit }),
        );
        const jobs = rows.map((r) => ({
          ...r,
          rows_synced: Number(r.rows_synced),
          rows_failed: Number(r.rows_failed),
          rows_deleted: Number(r.rows_deleted),
          duration_seconds: r.duration_seconds === null ? null : Number(r.duration_seconds),
          started_at: r.started_at.toISOString(),
          completed_at: iso(r.completed_at),
        }));
        return JSON.stringify({ jobs, count: jobs.length });
      });
      return replyJsonText(c, body);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/queue',
      tags: ['sync'],
      summary: 'Job queue: counts per state, oldest waiting job, most recent jobs',
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: publicReads })] as const,
      responses: { 200: { description: 'queue', content: json(queueResponseSchema) }, ...errors },
    }),
    async (c) => {
      // pg-boss's job table has no cluster column: counts and jobs are those of this cluster's tenants (several
      // clusters may share one database and queue).
      const tenants = await clusterTenantIds(ctx);
      // A cluster role's jobs live in its own pg-boss schema (the one its boss uses).
      const queueSchema = queueSchemaFor(deps.boss);
      const counts = await clusterQueueCounts({
        pool: deps.pool,
        boss: deps.boss,
        cluster: deps.cluster,
        deploymentIds: tenants,
      });
      const recent = await listJobs(deps.pool, queueSchema, {
        queues: [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE],
        deploymentIds: tenants,
        limit: 25,
      });
      return reply(c, {
        cluster_name: deps.cluster,
        queues: counts.map((q) => ({
          queue: q.queue,
          states: q.states,
          oldest_waiting_seconds: q.oldestWaitingSeconds,
        })),
        recent: recent.map((r) => ({
          id: r.id,
          queue: r.name,
          state: r.state,
          client_name: typeof r.data?.client_name === 'string' ? r.data.client_name : null,
          full_sync: typeof r.data?.full_sync === 'boolean' ? r.data.full_sync : null,
          triggered_by: typeof r.data?.triggered_by === 'string' ? r.data.triggered_by : null,
          retry_count: r.retry_count,
          created_on: r.created_on.toISOString(),
          started_on: iso(r.started_on),
          completed_on: iso(r.completed_on),
        })),
      });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/queue/jobs',
      tags: ['sync'],
      summary: "This cluster's pg-boss jobs, newest first: state, tenant, times, retries (read-only)",
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: publicReads })] as const,
      request: { query: queueJobsQuerySchema },
      responses: { 200: { description: 'queue jobs', content: json(queueJobsResponseSchema) }, ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      // Only this node's pg-boss schema, and within it only this cluster's tenants (the shared role's pgboss schema
      // may hold several clusters' jobs).
      const queueSchema = queueSchemaFor(deps.boss);
      const tenants = await clusterTenantIds(ctx);
      const rows = await listJobs(deps.pool, queueSchema, {
        queues: q.queue ? [q.queue] : [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE],
        deploymentIds: tenants,
        state: q.state,
        clientName: q.client_name,
        limit: q.limit,
      });
      const str = (v: unknown) => (typeof v === 'string' ? v : null);
      const jobs = rows.map((r) => ({
        id: r.id,
        queue: r.name,
        state: r.state as JobState,
        client_name: str(r.data?.client_name),
        deployment_id: str(r.data?.deployment_id),
        full_sync: typeof r.data?.full_sync === 'boolean' ? r.data.full_sync : null,
        triggered_by: str(r.data?.triggered_by),
        retry_count: r.retry_count,
        retry_limit: r.retry_limit,
        created_on: r.created_on.toISOString(),
        start_after: r.start_after.toISOString(),
        started_on: iso(r.started_on),
        completed_on: iso(r.completed_on),
      }));
      return reply(c, { cluster_name: deps.cluster, schema: queueSchema, jobs, count: jobs.length });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/tenants',
      tags: ['sync'],
      summary: 'Every tenant of the cluster with status, interval, last sync and lag (v_sync_status)',
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: publicReads })] as const,
      responses: { 200: { description: 'tenants', content: json(tenantsResponseSchema) }, ...errors },
    }),
    async (c) => {
      const rows = await ctx.inCluster((client) => tenantStatuses(client, deps.cluster, { drills: true }));
      return reply(c, {
        tenants: rows.map((r) => ({
          client_name: r.client_name,
          status: r.status,
          sync_enabled: r.sync_enabled,
          sync_interval: r.sync_interval,
          last_sync_at: iso(r.last_sync_at),
          last_sync_status: r.last_sync_status,
          lag_seconds: r.lag_seconds,
          last_job_status: r.last_job_status,
          unresolved_conflicts: r.unresolved_conflicts,
          hostname: r.hostname,
          last_drill_at: iso(r.last_drill_at),
          last_drill_passed: r.last_drill_passed,
          last_drill_failure: r.last_drill_failure,
          last_passed_drill_at: iso(r.last_passed_drill_at),
        })),
      });
    },
  );
}
