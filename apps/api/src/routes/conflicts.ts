import { createRoute } from '@hono/zod-openapi';
import { resolveConflict } from '@owui-sync/engine/sync';
import { actor } from '../auth.ts';
import { iso, reply, type ApiApp, type RouteContext } from '../context.ts';
import {
  conflictIdParams,
  conflictsQuerySchema,
  conflictsResponseSchema,
  errorSchema,
  resolveBodySchema,
  resolveResponseSchema,
} from '../schemas.ts';
import { commonErrors, json } from './openapi.ts';

/** GET /api/v1/conflicts, POST /api/v1/conflicts/{id}/resolve. */

const errors = commonErrors;

type ConflictRow = {
  log_id: string;
  client_id: string;
  table_name: string;
  row_key: unknown;
  conflict_type: string;
  source_data: unknown;
  target_data: unknown;
  resolution_strategy: string;
  resolution: string | null;
  resolved_data: unknown;
  job_id: string | null;
  detected_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
};

export function registerConflictRoutes(app: ApiApp, ctx: RouteContext): void {
  const { deps, auth } = ctx;

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/conflicts',
      tags: ['conflicts'],
      summary: 'Conflicts (sync_metadata.conflict_log), unresolved by default, newest first',
      security: [{ bearer: [] }],
      middleware: [auth.require('read', { public: deps.config.auth?.publicReads ?? false })] as const,
      request: { query: conflictsQuerySchema },
      responses: { 200: { description: 'conflicts', content: json(conflictsResponseSchema) }, ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const key = `conflicts:${q.client_name ?? ''}:${q.resolved}:${q.table ?? ''}:${q.limit}`;
      const rows = await ctx.shared(key, () =>
        ctx.inCluster(async (client) => {
          const res = await client.query<ConflictRow>(
            `SELECT c.log_id::text AS log_id, c.client_id, c.table_name, c.row_key, c.conflict_type, c.source_data,
                  c.target_data, c.resolution_strategy, c.resolution, c.resolved_data, c.job_id::text AS job_id,
                  c.detected_at, c.resolved_at, c.resolved_by
             FROM sync_metadata.conflict_log c
             JOIN sync_metadata.client_deployments d ON d.deployment_id = c.deployment_id
             JOIN sync_metadata.hosts h ON h.host_id = d.host_id
            WHERE h.cluster_name = $1::text
              AND ($2::text IS NULL OR d.client_name = $2::text)
              AND ($3::text = 'all' OR ($3::text = 'true') = (c.resolved_at IS NOT NULL))
              AND ($4::text IS NULL OR c.table_name = $4::text)
            ORDER BY c.detected_at DESC, c.log_id DESC
            LIMIT $5::int`,
            [deps.cluster, q.client_name ?? null, q.resolved, q.table ?? null, q.limit],
          );
          return res.rows;
        }),
      );
      const conflicts = rows.map((r) => ({
        ...r,
        log_id: Number(r.log_id),
        detected_at: r.detected_at.toISOString(),
        resolved_at: iso(r.resolved_at),
      }));
      return reply(c, { conflicts, count: conflicts.length });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/conflicts/{id}/resolve',
      tags: ['conflicts'],
      summary: 'Resolve a conflict by hand: keep the source or target version, or write merged data',
      security: [{ bearer: [] }],
      middleware: [auth.require('conflicts:resolve')] as const,
      request: {
        params: conflictIdParams,
        body: { content: { 'application/json': { schema: resolveBodySchema } }, required: true },
      },
      responses: {
        200: { description: 'resolved', content: json(resolveResponseSchema) },
        ...errors,
        404: { description: 'no such conflict in this cluster', content: json(errorSchema) },
        409: { description: 'already resolved', content: json(errorSchema) },
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const resolvedBy = actor(c);
      const result = await resolveConflict({
        pool: deps.pool,
        scope: { hostId: deps.hostId, cluster: deps.cluster },
        logId: Number(id),
        ...('keep' in body ? { keep: body.keep } : { data: body.data }),
        resolvedBy,
      });
      deps.metrics.conflictsResolved.inc({ strategy: 'manual' });
      deps.logger.info({ log_id: result.logId, resolution: result.resolution, by: resolvedBy }, 'conflict resolved');
      return reply(c, { log_id: result.logId, resolution: result.resolution, resolved_by: resolvedBy });
    },
  );
}
