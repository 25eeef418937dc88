import { createRoute } from '@hono/zod-openapi';
import { resolveConflict } from '@owui-sync/engine/sync';
import { listConflictLog } from '@owui-sync/engine/tenants';
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
        ctx.inCluster((client) =>
          listConflictLog(client, deps.cluster, {
            clientName: q.client_name,
            resolved: q.resolved === 'all' ? 'all' : q.resolved === 'true',
            table: q.table,
            limit: q.limit,
          }),
        ),
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
